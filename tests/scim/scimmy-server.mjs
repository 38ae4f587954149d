// An independently written SCIM 2.0 server for testing the wizard's SCIM verifier: SCIMMY and
// scimmy-routers (npm) do the protocol — filters, PatchOp, ListResponse, errors — and this file
// only stores resources in memory.
//
//   node tests/scim/scimmy-server.mjs [port] [bearer token]    prints "READY <base url>"
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";
import { randomUUID } from "node:crypto";

const port = Number(process.argv[2] ?? 0);
const token = process.argv[3] ?? "scimmy-test-token";

function store(Resource, uniqueAttr) {
  const items = new Map();
  Resource.ingress((resource, instance) => {
    const unique = String(instance[uniqueAttr] ?? "").toLowerCase();
    for (const [id, existing] of items) {
      if (id !== resource.id && String(existing[uniqueAttr] ?? "").toLowerCase() === unique) {
        throw new SCIMMY.Types.Error(409, "uniqueness", `${uniqueAttr} ${instance[uniqueAttr]} already exists`);
      }
    }
    if (resource.id) {
      if (!items.has(resource.id)) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
      const updated = { ...instance, id: resource.id, meta: { ...items.get(resource.id).meta, lastModified: new Date().toISOString() } };
      items.set(resource.id, updated);
      return updated;
    }
    const now = new Date().toISOString();
    const created = { ...instance, id: randomUUID(), meta: { created: now, lastModified: now } };
    items.set(created.id, created);
    return created;
  });
  Resource.egress((resource) => {
    if (resource.id) {
      const found = items.get(resource.id);
      if (!found) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
      return found;
    }
    const all = [...items.values()];
    return resource.filter ? resource.filter.match(all) : all;
  });
  Resource.degress((resource) => {
    if (!items.delete(resource.id)) throw new SCIMMY.Types.Error(404, null, `Resource ${resource.id} not found`);
  });
}

SCIMMY.Resources.declare(SCIMMY.Resources.User);
SCIMMY.Resources.declare(SCIMMY.Resources.Group);
store(SCIMMY.Resources.User, "userName");
store(SCIMMY.Resources.Group, "displayName");

const app = express();
app.use(
  "/scim/v2",
  new SCIMMYRouters({
    type: "bearer",
    docUri: "https://example.invalid/scim-auth",
    handler: (request) => {
      if (request.header("Authorization") !== `Bearer ${token}`) throw new Error("Authorization failed");
      return "test-admin";
    },
  }),
);
const server = app.listen(port, "127.0.0.1", () => {
  console.log(`READY http://127.0.0.1:${server.address().port}/scim/v2`);
});
