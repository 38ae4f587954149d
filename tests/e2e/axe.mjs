// axe-core (npm) run inside the app's window: the accessibility rules of WCAG 2.1 A/AA and
// axe's best practices. A step passes with no serious or critical violation; lesser ones are
// listed so they are seen.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export const axeTotals = { pages: 0, minor: 0 };

/** Checks what is on screen now; `name` names it in the failure. */
export async function axeCheck(browser, name) {
  const loaded = await browser.execute(() => typeof window.axe === "object");
  if (!loaded) await browser.execute(axeSource);
  const violations = await browser.execute(() =>
    window.axe
      .run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } })
      .then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }))),
  );
  axeTotals.pages += 1;
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const minor = violations.filter((v) => !bad.includes(v));
  axeTotals.minor += minor.length;
  for (const v of minor) console.log(`  axe (${v.impact}) on ${name}: ${v.id} — ${v.help} [${v.nodes.join(", ")}]`);
  assert.equal(bad.length, 0, `accessibility violations on ${name}:\n${bad.map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.join(", ")}`).join("\n")}`);
}
