#!/usr/bin/env node
// "The system browser" of the real-tenant end-to-end test (named by $BROWSER): opens the link it
// is given as a person's browser would once they have signed in — follows redirects (to the
// app's loopback listener in the end) and submits the self-posting form a SAML sign-in answers
// with. Each link it is given is appended to $SCRIPTED_BROWSER_LOG, and so is the AADSTS code of
// an Entra error page it ends on ("page: AADSTS50105").
import { appendFileSync } from "node:fs";

const [start] = process.argv.slice(2);
if (process.env.SCRIPTED_BROWSER_LOG) appendFileSync(process.env.SCRIPTED_BROWSER_LOG, `${start}\n`);
const attr = (tag, name) => tag.match(new RegExp(`${name}\\s*=\\s*["']([^"']*)["']`, "i"))?.[1];
const unescape = (s) => s.replace(/&quot;/g, '"').replace(/&#x2B;|&#43;/gi, "+").replace(/&#x3D;|&#61;/gi, "=").replace(/&#x2F;|&#47;/gi, "/").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
let next = { url: start, method: "GET", body: undefined };
for (let hop = 0; hop < 15; hop++) {
  const r = await fetch(next.url, {
    method: next.method,
    body: next.body,
    headers: next.body ? { "content-type": "application/x-www-form-urlencoded" } : {},
    redirect: "manual",
  });
  const location = r.headers.get("location");
  if (location) {
    next = { url: new URL(location, next.url).href, method: "GET", body: undefined };
    continue;
  }
  const html = await r.text();
  // A page that posts itself on load (the SAML response to the service's Reply URL).
  const form = html.match(/<form\b[^>]*>/i)?.[0];
  if (form && /method\s*=\s*["']?post/i.test(form) && /SAMLResponse/.test(html)) {
    const fields = new URLSearchParams();
    for (const input of html.match(/<input\b[^>]*>/gi) ?? []) {
      const name = attr(input, "name");
      if (name) fields.append(name, unescape(attr(input, "value") ?? ""));
    }
    next = { url: new URL(unescape(attr(form, "action") ?? ""), next.url).href, method: "POST", body: fields.toString() };
    continue;
  }
  // The page the person would read: an Entra error page names its AADSTS code.
  const code = html.match(/AADSTS\d+/)?.[0];
  if (code && process.env.SCRIPTED_BROWSER_LOG) appendFileSync(process.env.SCRIPTED_BROWSER_LOG, `page: ${code}\n`);
  break;
}
