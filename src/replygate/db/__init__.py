"""SQLAlchemy 2 adapter: tables, repositories, the unit of work, engine and migrations."""
