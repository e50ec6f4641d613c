"""`make reliability`: crash safety, races and scale-out against real servers on SQLite and PostgreSQL."""
