from odooops.db.database import Actor, Connection, Database, Row
from odooops.db.queries import load_queries, queries_beside

__all__ = ["Actor", "Connection", "Database", "Row", "load_queries", "queries_beside"]
