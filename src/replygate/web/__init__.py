"""The HTTPS web app: console pages, REST API, OAuth routes and health; see ``app.create_app``."""
