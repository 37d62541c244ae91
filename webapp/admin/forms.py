from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DecimalField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length

from webapp.models import Role

# SelectChoice, not tuples: WTForms 3.3 deprecates tuple choices (removed in 3.4)
ROLE_CHOICES = [SelectChoice(r.value) for r in Role]


class UserForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="viewer")
    submit = SubmitField("Create user")


class UserRoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)
    active = BooleanField("Active")
    submit = SubmitField("Save")


class SettingsForm(FlaskForm):
    stale_after_days = IntegerField("Stale after (days)", validators=[InputRequired()])
    trash_retention_days = IntegerField("Keep trash for (days)", validators=[InputRequired()])
    auto_merge_threshold = DecimalField("Auto-merge threshold", places=2, validators=[InputRequired()])
    review_threshold = DecimalField("Review threshold", places=2, validators=[InputRequired()])
    source_precedence = TextAreaField(
        "Source precedence", description="Technical fields (engine, version, location, posture). "
        "One source label per line, highest first. manual is always highest."
    )
    business_source_precedence = TextAreaField(
        "Business source precedence", description="Business fields (name, owner, criticality, "
        "classification, environment, status, notes). One source label per line, highest first."
    )
    submit = SubmitField("Save settings")
