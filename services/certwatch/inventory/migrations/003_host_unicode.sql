-- The Unicode form of an internationalised name, beside its punycode, so `search` finds it
-- typed either way. Filled by the inventory.domains projection; NULL means "same as host"
-- (rows written before this column had only ASCII names to compare, or get it on rebuild).
ALTER TABLE inventory_domains ADD COLUMN host_unicode text;
