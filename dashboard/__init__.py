"""cmh-dashboard web app (Dash under gunicorn), reading only the published warehouse."""
