create type private.ledger_entry as (
  user_id uuid,
  delta bigint,
  reason text,
  reference text,
  metadata jsonb
);
comment on type private.ledger_entry is
  'One change of a balance, as private._write_ledger posts it: tokens (negative: a debit), why, and the external '
  'key of the change (unique in the ledger).';
