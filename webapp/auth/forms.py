from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, EqualTo, Length


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    submit = SubmitField("Sign in")


class SetupForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(max=1024)],
        description="At least 12 characters.",
    )
    confirm = PasswordField(
        "Repeat password", validators=[DataRequired(), EqualTo("password", "Passwords differ.")]
    )
    submit = SubmitField("Create admin account")


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired()])
    new_password = PasswordField("New password", validators=[DataRequired(), Length(max=1024)])
    submit = SubmitField("Change password")


class TokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)],
                       description="What uses this token, e.g. nightly-scanner.")
    read_only = BooleanField("Read-only", description="Can read the inventory but change nothing.")
    expires_in_days = SelectField(
        "Expires",
        # SelectChoice, not tuples: WTForms 3.3 deprecates tuple choices (removed in 3.4)
        choices=[SelectChoice("30", "in 30 days"), SelectChoice("90", "in 90 days"),
                 SelectChoice("365", "in a year"), SelectChoice("", "never")],
        default="90",
    )
    submit = SubmitField("Create token")
