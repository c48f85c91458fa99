-- Local development data, applied by `npm start` on a new database and by `npm run db:reset`.
-- Never applied to a hosted project (supabase db push without --include-seed).

-- A demo user; the auth.users trigger creates its public.users, profile and settings rows.
insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data)
values (
  '00000000-0000-4000-8000-000000000001', 'authenticated', 'authenticated', 'demo@example.com', now(),
  '{"provider": "email", "providers": ["email"]}', '{"full_name": "Demo User"}'
)
on conflict (id) do nothing;

-- Local Stripe price ids (the fake Stripe API in tests and `stripe listen` in test mode both accept any
-- ids; on a hosted project set your real ones the same way, see README "Billing").
update public.subscription_plans set stripe_price_monthly = 'price_local_pro_monthly',
                                     stripe_price_yearly = 'price_local_pro_yearly' where id = 'pro';
update public.subscription_plans set stripe_price_monthly = 'price_local_max_monthly',
                                     stripe_price_yearly = 'price_local_max_yearly' where id = 'max';
