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


class UserEditForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = SelectField("Role", choices=ROLE_CHOICES)
    active = BooleanField("Active", description="An inactive user cannot sign in; their sessions "
                          "and API tokens stop working.")
    submit = SubmitField("Save user")


class ResetPasswordForm(FlaskForm):
    password = PasswordField("Temporary password", validators=[DataRequired(), Length(max=1024)],
                             description="Tell the user; they must choose a new password when they "
                             "next sign in. Every session of theirs is signed out now.")
    submit = SubmitField("Reset password")


class SettingsForm(FlaskForm):
    stale_after_days = IntegerField("Stale after (days)", validators=[InputRequired()])
    trash_retention_days = IntegerField("Keep trash for (days)", validators=[InputRequired()])
    auto_merge_threshold = DecimalField("Auto-merge threshold", places=2, validators=[InputRequired()])
    review_threshold = DecimalField("Review threshold", places=2, validators=[InputRequired()])
    # shown as ordered lists (templates/admin/settings.html); the route reads every input
    source_precedence = TextAreaField(
        "Source precedence", description="Technical fields (engine, version, location, posture): "
        "when two sources disagree, the one higher in this list wins. manual is always highest."
    )
    business_source_precedence = TextAreaField(
        "Business source precedence", description="Business fields (name, owner, criticality, "
        "classification, environment, status, notes): the source higher in this list wins."
    )
    submit = SubmitField("Save settings")
