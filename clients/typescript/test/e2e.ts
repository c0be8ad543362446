// Against a real `landlord api` and worker (tests/it/ts_client.rs runs it):
// provision a tenant, wait for its run, read its connections with their
// credentials, and print what came back as JSON for the Rust side to check.
import { ProblemError, createLandlordClient, waitForRun } from "../src/index.js";

const url = process.env.LANDLORD_API_URL!;
const tenant = process.env.TENANT!;
const client = createLandlordClient(url, process.env.LANDLORD_API_TOKEN);

const created = await client.POST("/tenants", { body: { name: tenant } });
if (created.error) throw new ProblemError(created.response.status, created.error);
const run = await waitForRun(client, created.data.run.id);

const conns = await client.GET("/tenants/{id}/connections", {
  params: { path: { id: tenant }, query: { include: "credentials" } },
});
if (conns.error) throw new ProblemError(conns.response.status, conns.error);
const postgres = conns.data.items.find((c) => c.service === "postgres");

// A refusal comes back typed as a problem, not thrown.
const missing = await client.GET("/tenants/{id}", { params: { path: { id: "nosuchtenant" } } });

console.log(
  JSON.stringify({
    status: created.response.status,
    run: run.status,
    database: postgres?.database,
    user: postgres?.user,
    has_secret: typeof postgres?.secret === "string" && postgres.secret.length > 0,
    missing: missing.response.status,
    missing_type: missing.error?.type,
  }),
);
