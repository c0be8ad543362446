-- Which key encrypted each secret, so LANDLORD_SECRET_KEY can be rotated
-- (landlord secrets rotate-key). NULL: written before key ids, under the
-- key of that time.
ALTER TABLE secrets ADD COLUMN key_id text;
