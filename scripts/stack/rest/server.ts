// Placeholder while the rest stand-in is being written: answers every request with 501.
const port = Number(Deno.env.get("API_PORT"));
Deno.serve(
  { hostname: "127.0.0.1", port },
  () =>
    new Response(
      JSON.stringify({ code: "PGRST000", details: null, hint: null, message: "not yet implemented" }),
      {
        status: 501,
        headers: { "content-type": "application/json" },
      },
    ),
);
