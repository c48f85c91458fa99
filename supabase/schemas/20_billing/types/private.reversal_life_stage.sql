create type private.reversal_life_stage as enum ('opened', 'in_force', 'final');
comment on type private.reversal_life_stage is
  'Where a refund or dispute status lies in its life, in order: opened (a pending refund, a dispute inquiry), in '
  'force (a succeeded refund, a dispute under way), final (a failed or canceled refund, a closed dispute). Orders '
  'events of one refund or dispute created in the same second.';
