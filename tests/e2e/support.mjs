// What the end-to-end tests share: a free port, an environment that keeps the app's settings,
// logs and keychain fallbacks out of the real profile, and one launch of the app under
// tauri-driver.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { remote } from "webdriverio";
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

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

/** One launch of `app` in a real window through tauri-driver, with `env`: `fn(browser)` runs
 * once a WebDriver session is open; the session and the driver (with WebKitWebDriver, in its
 * process group) end afterwards, whatever happens. */
export async function withApp(app, env, fn) {
  const port = await freePort();
  const nativePort = await freePort();
  const driver = spawn("tauri-driver", ["--port", String(port), "--native-port", String(nativePort)], { env, stdio: ["ignore", "inherit", "inherit"], detached: true });
  let browser;
  try {
    for (let i = 0; i < 100; i++) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/status`)).ok) break;
      } catch {}
      await new Promise((r) => setTimeout(r, 100));
    }
    browser = await remote({ hostname: "127.0.0.1", port, logLevel: "warn", capabilities: { "tauri:options": { application: app }, "wdio:enforceWebDriverClassic": true } });
    return await fn(browser);
  } finally {
    if (browser) await browser.deleteSession().catch(() => {});
    try {
      process.kill(-driver.pid, "SIGTERM");
    } catch {}
  }
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

/** Waits until the page has painted what its DOM now holds (two animation frames), so a
 * screenshot cannot show an earlier frame. Returns false if no frame came within a second. */
export async function painted(browser) {
  return browser.executeAsync((done) => {
    const timer = setTimeout(() => done(false), 1000);
    requestAnimationFrame(() => requestAnimationFrame(() => {
      clearTimeout(timer);
      done(true);
    }));
  });
}

/** The screenshots the README and docs show, by the name the end-to-end tests give them. Run the
 * tests with UPDATE_SCREENSHOTS=1 to replace docs/screenshots/ with this run's. */
const DOCS = {
  "01-welcome": "welcome",
  "03-tenant-summary": "tenant-summary",
  "13b-register-rotate": "register-rotate",
  "14-sync-preview": "sync-preview",
  "15-scim-report": "scim-report",
  "17-done-provisioning": "done-provisioning",
  "21-done-saml": "done-saml",
  "22-test-sign-in-saml": "test-sign-in-saml",
  "26-firezone-connected": "vendor-consent",
  "00-installed-welcome-dark": "welcome-dark",
};

export function publish(name, file) {
  if (process.env.UPDATE_SCREENSHOTS !== "1" || !DOCS[name]) return;
  const to = resolve(import.meta.dirname, "../../docs/screenshots", `${DOCS[name]}.png`);
  copyFileSync(file, to);
  console.log(`  updated ${to}`);
}
