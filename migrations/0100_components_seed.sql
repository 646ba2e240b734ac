-- The four built-in components that use project connections or run user code (issue 6).
-- Source of truth: wfmon/components/specs.py (tests/components/test_specs.py checks that
-- the seeded rows match it). Owned by the system user and public, so every signed-in user
-- can pick them in the builder.
--
-- 0004 FORCEs row-level security, which hides the table from its owner (the role running
-- migrations) too, and no policy lets anyone but a component's creator insert. Seeding is
-- a migration-time job of the owner: lift FORCE for this one statement and restore it in
-- the same transaction, so no other session ever sees the table without it.

ALTER TABLE components NO FORCE ROW LEVEL SECURITY;

INSERT INTO components (name, display_name, description, config_schema, created_by, visibility_id)
SELECT v.name, v.display_name, v.description, v.config_schema,
       '00000000-0000-0000-0000-000000000001', vis.id
FROM (VALUES
    ('postgresql-query', 'PostgreSQL query',
     'Run one parameterised SQL statement on a project PostgreSQL connection.',
     $schema${"type": "object", "required": ["sql"], "additionalProperties": false, "properties": {"sql": {"type": "string", "minLength": 1}, "params": {"oneOf": [{"type": "array", "items": {"description": "A literal, or {path}, {template}, {value} or {base64}"}}, {"type": "object", "additionalProperties": {"description": "A literal, or {path}, {template}, {value} or {base64}"}}]}, "read_only": {"type": "boolean", "default": false}, "statement_timeout_ms": {"type": "integer", "minimum": 1, "maximum": 600000}, "max_rows": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}, "max_bytes": {"type": "integer", "minimum": 1, "maximum": 1500000}}}$schema$::jsonb),
    ('redis-command', 'Redis command',
     'Run one allowlisted Redis command on a project Redis connection.',
     $schema${"type": "object", "required": ["command"], "additionalProperties": false, "properties": {"command": {"type": "string", "minLength": 1}, "args": {"type": "array", "items": {"description": "A literal, or {path}, {template}, {value} or {base64}"}}, "binary": {"type": "boolean", "default": false}}}$schema$::jsonb),
    ('typescript-processor', 'TypeScript processor',
     'Transform data with TypeScript in a sandbox without any permissions.',
     $schema${"type": "object", "required": ["code"], "additionalProperties": false, "properties": {"code": {"type": "string", "minLength": 1}, "timeout_ms": {"type": "integer", "minimum": 10, "maximum": 60000, "default": 5000}, "memory_mb": {"type": "integer", "minimum": 32, "maximum": 1024, "default": 128}, "max_output_bytes": {"type": "integer", "minimum": 1, "maximum": 1500000}}}$schema$::jsonb),
    ('cache-aside', 'Cache-aside',
     'Serve the output of a wrapped component from Redis; on a miss run it and store it.',
     $schema${"type": "object", "required": ["key", "wrapped"], "additionalProperties": false, "properties": {"key": {"type": "string", "minLength": 1}, "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 2592000, "default": 300}, "wrapped": {"type": "object", "required": ["component"], "properties": {"component": {"type": "string"}, "config": {"type": "object"}, "connection_id": {"type": ["string", "null"]}}}}}$schema$::jsonb)
) AS v (name, display_name, description, config_schema)
CROSS JOIN component_visibility vis
WHERE vis.name = 'public'
ON CONFLICT (name) DO UPDATE SET
    display_name  = EXCLUDED.display_name,
    description   = EXCLUDED.description,
    config_schema = EXCLUDED.config_schema,
    updated_at    = now();

ALTER TABLE components FORCE ROW LEVEL SECURITY;
