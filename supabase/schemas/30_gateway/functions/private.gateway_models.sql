create or replace function private.gateway_models(p_user_id uuid, p_provider text) returns jsonb
language sql stable
set search_path = ''
as $$
  select coalesce(
           jsonb_agg(jsonb_build_object('id', m.model, 'created', extract(epoch from m.effective_from)::bigint)
                     order by m.model) filter (where m.model is not null),
           '[]'::jsonb)
    from public.users u
    join public.subscription_plans p on p.id = u.plan
    left join public.model_pricing m
      on m.provider = p_provider
     and private._in_force(m.effective_from, m.effective_to, now())
     and (cardinality(p.allowed_models) = 0 or m.model = any (p.allowed_models))
   where u.id = p_user_id
  having count(u.id) > 0
$$;

comment on function private.gateway_models(uuid, text) is
  'The models a user may call on a provider now, for a proxy''s GET /v1/models: those with a price in force (a '
  'model without one cannot be billed, so the gateway refuses it) that the user''s plan allows (every priced model '
  'when its allowed_models is empty), as a JSON array of {id, created} (created: when its price took effect, in '
  'epoch seconds) ordered by id; null when the user is unknown.';
