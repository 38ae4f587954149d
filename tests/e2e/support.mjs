// What both end-to-end tests need: a free port, and an environment that keeps the app's
// settings, logs and keychain fallbacks out of the real profile.
import { createServer } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A port nothing listens on now (the OS picks it). */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/** The environment for one run of the app, with a fresh home directory named after `prefix`. */
export function appEnv(prefix, extra = {}) {
  const home = mkdtempSync(join(tmpdir(), prefix));
  return {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, "config"),
    XDG_DATA_HOME: join(home, "data"),
    XDG_CACHE_HOME: join(home, "cache"),
    // Without a GPU the app picks WebKitGTK's shared-memory renderer, whose windows
    // WebKitWebDriver cannot screenshot (the request hangs); keep the DMABUF path for the test.
    WEBKIT_DISABLE_DMABUF_RENDERER: process.env.WEBKIT_DISABLE_DMABUF_RENDERER ?? "0",
    ...extra,
  };
}
