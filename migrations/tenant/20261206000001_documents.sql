-- Seed 002's document tables and its performance indexes, in every tenant's
-- schema or database. The check_schema step verifies each table and index
-- named here exists (worker/src/steps/check_schema.rs lists them).
CREATE TABLE docbasket (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE document (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    basket_id      uuid NOT NULL REFERENCES docbasket (id) ON DELETE CASCADE,
    name           text NOT NULL,
    document_type  text NOT NULL,
    status         text NOT NULL DEFAULT 'new',
    related_po     text,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE document_metadata (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    document_id    uuid NOT NULL REFERENCES document (id) ON DELETE CASCADE,
    key            text NOT NULL,
    value          text,
    metadata_type  text NOT NULL DEFAULT 'text'
);

CREATE TABLE file_history (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    document_id  uuid NOT NULL REFERENCES document (id) ON DELETE CASCADE,
    path         text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE operations (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    document_id     uuid REFERENCES document (id) ON DELETE CASCADE,
    operation_type  text NOT NULL,
    status          text NOT NULL DEFAULT 'pending',
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE operation_dependencies (
    operation_id  uuid NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    depends_on    uuid NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    PRIMARY KEY (operation_id, depends_on)
);

CREATE TABLE doc_events (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    basket_id        uuid REFERENCES docbasket (id) ON DELETE CASCADE,
    document_id      uuid REFERENCES document (id) ON DELETE CASCADE,
    event_type       text NOT NULL,
    event_timestamp  timestamptz NOT NULL DEFAULT now(),
    status           text NOT NULL DEFAULT 'recorded'
);

CREATE TABLE processors (
    id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name    text NOT NULL UNIQUE,
    config  jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE processing_operations (
    processor_id  uuid NOT NULL REFERENCES processors (id) ON DELETE CASCADE,
    operation_id  uuid NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    PRIMARY KEY (processor_id, operation_id)
);

CREATE INDEX idx_documents_basket_id ON document (basket_id);
CREATE INDEX idx_documents_document_type ON document (document_type);
CREATE INDEX idx_documents_status ON document (status);
CREATE INDEX idx_documents_related_po ON document (related_po);
CREATE INDEX idx_file_history_document_id ON file_history (document_id);
CREATE INDEX idx_operations_document_id ON operations (document_id);
CREATE INDEX idx_operations_operation_type ON operations (operation_type);
CREATE INDEX idx_operations_status ON operations (status);
CREATE INDEX idx_operation_dependencies_operation_id ON operation_dependencies (operation_id);
CREATE INDEX idx_operation_dependencies_depends_on ON operation_dependencies (depends_on);
CREATE INDEX idx_doc_events_basket_id ON doc_events (basket_id);
CREATE INDEX idx_doc_events_event_type ON doc_events (event_type);
CREATE INDEX idx_doc_events_document_id ON doc_events (document_id);
CREATE INDEX idx_doc_events_event_timestamp ON doc_events (event_timestamp);
CREATE INDEX idx_doc_events_status ON doc_events (status);
CREATE INDEX idx_document_metadata_document_id ON document_metadata (document_id);
CREATE INDEX idx_document_metadata_key ON document_metadata (key);
CREATE INDEX idx_document_metadata_type ON document_metadata (metadata_type);
