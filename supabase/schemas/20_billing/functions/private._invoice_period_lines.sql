-- The subscription period lines of an invoice: what it bills for a period of a subscription item, as opposed
-- to prorations ("Unused time on …", "Remaining time on …") and one-off invoice items.

create or replace function private._invoice_period_lines(p_invoice jsonb)
returns table (price_id text, period_start timestamptz, period_end timestamptz)
language sql
immutable
set search_path = ''
as $$
  select coalesce(l -> 'pricing' -> 'price_details' ->> 'price', l -> 'price' ->> 'id'),
         private._stripe_ts(l -> 'period' -> 'start'), private._stripe_ts(l -> 'period' -> 'end')
    from jsonb_array_elements(case when jsonb_typeof(p_invoice -> 'lines' -> 'data') = 'array'
                                   then p_invoice -> 'lines' -> 'data' else '[]' end) as l
   where case
           -- API versions since 2025-03-31: parent.subscription_item_details.proration
           when l -> 'parent' ->> 'type' is not null then
             l -> 'parent' ->> 'type' = 'subscription_item_details'
             and not coalesce((l -> 'parent' -> 'subscription_item_details' ->> 'proration')::boolean, false)
           -- earlier versions: type = 'subscription' and proration
           else l ->> 'type' = 'subscription' and not coalesce((l ->> 'proration')::boolean, false)
         end
$$;

comment on function private._invoice_period_lines(jsonb) is
  'The lines of a Stripe invoice that bill a subscription period (not prorations, not invoice items), with '
  'their price and period. Reads both line shapes (parent.subscription_item_details, and type/proration of '
  'API versions before 2025-03-31).';
