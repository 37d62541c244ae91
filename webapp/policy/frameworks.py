"""The frameworks controls are mapped to. A control's `references` names these ids; /policy lists
frameworks, then the controls that cite each one (`base.controls_for`)."""

from webapp.policy.base import Framework, register_framework

SOC2 = register_framework(
    Framework(
        id="soc2",
        title="SOC 2",
        description="AICPA Trust Services Criteria (2017, revised points of focus 2022): "
        "common criteria CC and availability criteria A.",
        url="https://www.aicpa-cima.com/resources/download/2017-trust-services-criteria-with-revised-points-of-focus-2022",
    )
)
GDPR = register_framework(
    Framework(
        id="gdpr",
        title="GDPR",
        description="Regulation (EU) 2016/679, Article 32: security of processing.",
        url="https://eur-lex.europa.eu/eli/reg/2016/679/oj",
    )
)
CIS_CONTROLS = register_framework(
    Framework(
        id="cis_controls",
        title="CIS Controls v8",
        description="Center for Internet Security Critical Security Controls, version 8 safeguards.",
        url="https://www.cisecurity.org/controls/v8",
    )
)
CIS_AWS = register_framework(
    Framework(
        id="cis_aws",
        title="CIS AWS Foundations Benchmark v3.0.0",
        description="Center for Internet Security benchmark for AWS accounts; section 2.3 is RDS.",
        url="https://www.cisecurity.org/benchmark/amazon_web_services",
    )
)
AWS_FSBP = register_framework(
    Framework(
        id="aws_fsbp",
        title="AWS Foundational Security Best Practices",
        description="AWS Security Hub's standard; RDS.n are its Amazon RDS controls.",
        url="https://docs.aws.amazon.com/securityhub/latest/userguide/fsbp-standard.html",
    )
)
