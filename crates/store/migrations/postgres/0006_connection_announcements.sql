-- Every change to a connection is announced to every node on the
-- invalidation channel as `conn <environment id> <user id>`, in the
-- changing transaction (so it is heard only once committed), and each node
-- drops its cached copy of that end user's connections.
CREATE FUNCTION gatehouse_announce_connection() RETURNS trigger AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    PERFORM pg_notify('gatehouse_invalidate', 'conn ' || OLD.environment_id || ' ' || OLD.user_id);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    PERFORM pg_notify('gatehouse_invalidate', 'conn ' || NEW.environment_id || ' ' || NEW.user_id);
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER connections_announce AFTER INSERT OR UPDATE OR DELETE ON connections
  FOR EACH ROW EXECUTE FUNCTION gatehouse_announce_connection();
