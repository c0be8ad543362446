-- Baseline fixtures every tenant starts with.
INSERT INTO schemas (name, definition) VALUES
    ('accounts', '{"type": "object", "properties": {"name": {"type": "string"}}}'),
    ('contacts', '{"type": "object", "properties": {"email": {"type": "string"}}}')
ON CONFLICT (name) DO NOTHING;

INSERT INTO columns (schema_name, name, type) VALUES
    ('accounts', 'name', 'text'),
    ('contacts', 'email', 'text')
ON CONFLICT DO NOTHING;
