-- PostgreSQL announces every change to a connection to the other nodes
-- (0006 there). SQLite serves one node, whose store drops its own cached
-- connections when it writes them: nothing to add here.
SELECT 1;
