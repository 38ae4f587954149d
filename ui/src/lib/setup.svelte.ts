// State of the setup steps (Choose service → Done). Business rules live in Rust.
import { asIpcError, ipc } from "../ipc";
import type {
  Adoption,
  ApplyEvent,
  Assignee,
  DoneView,
  IpcError,
  JobStatus,
  Logs,
  OnDemandResult,
  PlanView,
  PreviousSetupView,
  Principal,
  ProviderInfo,
  PushResult,
  SamlFile,
  ScimChoice,
  ScimContext,
  ScimReport,
  SetupStatus,
  SyncPreview,
  TokenState,
  Undone,
  VendorView,
} from "../ipc";
import { STEP } from "./steps";
import { wizard } from "./wizard.svelte";

export type StepStatus = "waiting" | "running" | "done" | "failed" | "consent";

export interface StepProgress {
  status: StepStatus;
  detail: string;
}

class Setup {
  providers = $state<ProviderInfo[] | null>(null);
  /** Setups applied before in this tenant (a re-run starts from one). */
  previous = $state<PreviousSetupView[] | null>(null);
  /** What checking the earlier setups found (expiry, drift, provisioning). */
  previousStatus = $state<SetupStatus[] | null>(null);
  checkingPrevious = $state(false);
  previousError = $state<IpcError | null>(null);
  providerId = $state<string | null>(null);
  inputs = $state<Record<string, string>>({});
  secretDays = $state<number | null>(null);
  /** Add a new client secret next to the current one (rotation without downtime). */
  rotate = $state(false);
  /** Messages for the inputs, by field id. */
  inputErrors = $state<Record<string, string>>({});
  plan = $state<PlanView | null>(null);
  done = $state<DoneView | null>(null);
  progress = $state<Record<number, StepProgress>>({});
  applying = $state(false);
  /** A short description of the work in progress, or null. */
  busy = $state<string | null>(null);
  error = $state<IpcError | null>(null);
  /** The last hand-over that worked, said in words. */
  notice = $state<string | null>(null);
  pushed = $state<PushResult | null>(null);
  undone = $state<Undone[] | null>(null);

  // Sync mode and SCIM (steps 5 and 6).
  /** Set up SCIM provisioning in this run (always for SCIM-only providers). */
  scimWanted = $state(false);
  /** Steps passed over on the way to Review because nothing on them needed deciding (their
   * defaults are in the plan); the rail still opens them. */
  skipped = $state<number[]>([]);
  /** The admin adopts the apps Register app listed as someone else's too (what to keep). */
  adoption = $state<Adoption | null>(null);
  scim = $state<ScimContext | null>(null);
  syncAll = $state(false);
  assigned = $state<Assignee[]>([]);
  preview = $state<SyncPreview | null>(null);
  scimUrl = $state("");
  tokenExpires = $state("");
  token = $state<TokenState | null>(null);
  report = $state<ScimReport | null>(null);
  writeTests = $state(false);
  trustedCert = $state("");
  startAfterApply = $state(true);
  job = $state<JobStatus | null>(null);
  onDemand = $state<OnDemandResult | null>(null);
  logs = $state<Logs | null>(null);

  // Services that own their Entra apps (Twingate, Firezone): their consent, checked.
  vendor = $state<VendorView | null>(null);

  get provider(): ProviderInfo | null {
    return this.providers?.find((p) => p.id === this.providerId) ?? null;
  }

  async loadProviders() {
    if (this.providers) return;
    try {
      this.providers = await ipc.providers();
      if (!this.providerId && this.providers.length) this.providerId = this.providers[0].id;
    } catch (e) {
      this.error = asIpcError(e);
    }
  }

  async loadPrevious() {
    try {
      this.previous = await ipc.previousSetups();
    } catch {
      // Not worth an error screen: the admin can still type the inputs.
      this.previous = [];
    }
  }

  /** Checks every earlier setup, read-only. */
  async checkPrevious() {
    this.checkingPrevious = true;
    const r = await this.run("Checking your earlier setups: secrets, drift and provisioning…", () =>
      ipc.checkPreviousSetups((e) => wizard.onEvent(e)),
    );
    this.checkingPrevious = false;
    // Shown on the earlier-setups card, not at the bottom of the form.
    this.previousError = r.ok ? null : this.error;
    if (!r.ok) this.error = null;
    if (r.ok) this.previousStatus = r.value;
  }

  /** The check result of an earlier setup, if it was checked. */
  statusOf(p: PreviousSetupView): SetupStatus | null {
    return this.previousStatus?.find((s) => s.provider === p.providerId && s.name === p.displayName) ?? null;
  }

  /** Starts a re-run of a setup done before: its provider and inputs, then the plan. */
  async rerun(p: PreviousSetupView): Promise<boolean> {
    this.choose(p.providerId);
    this.inputs = { ...p.inputs };
    return this.prepare();
  }

  /** What the last SP-metadata import said (what it filled, what it left out). */
  imported = $state<string | null>(null);

  /** Fills the SAML inputs from the service's own metadata: a URL, or a file picked in Rust. */
  async importSpMetadata(url: string | null) {
    this.imported = null;
    this.inputErrors = {};
    const r = await this.run("Reading the service's SAML metadata…", () => ipc.importSpMetadata(url));
    if (!r.ok) {
      const err = this.error;
      if (err?.kind === "invalid") {
        this.inputErrors = { sp_metadata: err.detail.message };
        this.error = null;
      }
      return;
    }
    const md = r.value;
    if (!md) return;
    const ids = new Set(this.provider?.inputs.map((i) => i.id) ?? []);
    const fill: Record<string, string> = { entity_id: md.entityId, reply_url: md.replyUrls.join(", ") };
    if (md.logoutUrl) fill.logout_url = md.logoutUrl;
    for (const [k, v] of Object.entries(fill)) if (ids.has(k)) this.inputs[k] = v;
    this.imported = `Filled from the metadata: Entity ID ${md.entityId}, Reply URL ${md.replyUrls.join(", ")}${md.logoutUrl ? `, logout URL ${md.logoutUrl}` : ""}.${md.skippedAcs.length ? ` Left out (Entra answers by HTTP-POST only): ${md.skippedAcs.join(", ")}.` : ""}${md.signsRequests ? " The service signs its sign-in requests: Entra accepts them as they are." : ""}`;
  }

  choose(id: string) {
    this.imported = null;
    if (this.providerId === id) return;
    this.providerId = id;
    // A choice starts at its default, so what the form shows is what is sent.
    const chosen = this.providers?.find((p) => p.id === id);
    this.inputs = Object.fromEntries(
      (chosen?.inputs ?? []).filter((i) => i.kind === "choice" && i.default !== null).map((i) => [i.id, i.default as string]),
    );
    this.inputErrors = {};
    this.plan = null;
    this.rotate = false;
    this.resetScim();
  }

  private get secretChoice() {
    return { days: this.secretDays, rotate: this.rotate };
  }

  private resetScim() {
    this.scimWanted = false;
    this.scim = null;
    this.syncAll = false;
    this.assigned = [];
    this.preview = null;
    this.scimUrl = "";
    this.tokenExpires = "";
    this.token = null;
    this.report = null;
    this.job = null;
    this.onDemand = null;
    this.logs = null;
    this.vendor = null;
  }

  /** Runs a command, tracking busy state and errors; `ok` says whether it succeeded. */
  private async run<T>(label: string, f: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
    this.busy = label;
    this.error = null;
    this.notice = null;
    try {
      return { ok: true, value: await f() };
    } catch (e) {
      const err = asIpcError(e);
      if (err.kind === "inputs") {
        this.inputErrors = Object.fromEntries(err.detail.errors.map((x) => [x.field, x.message]));
      }
      if (err.kind === "notSignedIn") {
        wizard.goToStep(STEP.signin);
      }
      this.error = err;
      return { ok: false };
    } finally {
      this.busy = null;
      wizard.progress = null;
    }
  }

  /** Checks the inputs, reads the tenant and computes the plan; then shows Register app (or,
   * for a SCIM-only provider, Sync mode). */
  async prepare(): Promise<boolean> {
    if (!this.providerId) return false;
    this.inputErrors = {};
    const id = this.providerId;
    const checked = await this.run("Checking your inputs…", () => ipc.checkInputs(id, this.inputs, this.secretDays));
    if (!checked.ok) return false;
    this.done = null;
    this.progress = {};
    this.undone = null;
    // SAML with SCIM on the same app (the file-transfer service): provisioning is part of the
    // setup unless the admin turns it off on Sync mode.
    if (this.provider?.protocol === "saml" && this.provider.scim && !this.scimWanted) this.scimWanted = true;
    // The vendor's own apps come first: the admin connects them in the vendor's console.
    if (this.provider?.protocol === "vendor") {
      this.plan = null;
      wizard.goToStep(STEP.consent);
      return this.checkVendor();
    }
    if (this.provider && !this.provider.signIn && this.provider.protocol !== "saml") {
      this.scimWanted = true;
      this.plan = null;
      wizard.goToStep(STEP.sync);
      return this.loadScim();
    }
    const plan = await this.run("Reading the tenant: its policy, your roles, a sample of users, and what already exists…", () =>
      ipc.prepareSetup(id, this.inputs, this.secretChoice, null, (e) => wizard.onEvent(e)),
    );
    if (!plan.ok) return false;
    this.plan = plan.value;
    this.adoption = null;
    this.skipped = [];
    // Nothing to decide on Register app and Permissions (a new app, consent the admin gives in
    // the flow, no warnings): straight on to what needs the admin next. Never for an app
    // someone else also holds, nor for a custom profile (its permissions are the admin's call).
    const decide = plan.value.foreign.length > 0 || !!plan.value.customProfile;
    if (this.provider?.protocol === "oidc" && !decide && !needsRegister(plan.value) && !needsConsent(plan.value)) {
      this.skipped = [STEP.register, STEP.consent];
      if (this.provider.scim && this.scimWanted) {
        wizard.goToStep(STEP.sync);
        return this.loadScim();
      }
      this.skipped.push(STEP.sync, STEP.scim);
      wizard.goToStep(STEP.review);
      return true;
    }
    wizard.goToStep(STEP.register);
    return true;
  }

  /** Turns rotation on or off and plans again (staying on Register app). */
  async setRotate(on: boolean): Promise<boolean> {
    if (!this.providerId) return false;
    const id = this.providerId;
    const before = this.rotate;
    this.rotate = on;
    const what = this.provider?.protocol === "saml" ? "signing certificate" : "client secret";
    const plan = await this.run(on ? `Planning a new ${what}…` : `Planning without a new ${what}…`, () =>
      ipc.prepareSetup(id, this.inputs, this.secretChoice, null, (e) => wizard.onEvent(e)),
    );
    if (!plan.ok) {
      this.rotate = before;
      return false;
    }
    this.plan = plan.value;
    return true;
  }

  /** After Permissions: Sync mode when the provider takes SCIM, else Review. */
  afterPermissions() {
    wizard.goToStep(this.provider?.scim ? STEP.sync : STEP.review);
  }

  /** Checks whether the vendor's apps are in the tenant with their consent. `quiet` checks
   * (the step's own polling) leave the busy line alone. */
  async checkVendor(quiet = false): Promise<boolean> {
    if (!this.providerId) return false;
    const id = this.providerId;
    if (quiet) {
      try {
        this.vendor = await ipc.vendorStatus(id, this.inputs, (e) => wizard.onEvent(e));
        return true;
      } catch {
        return false;
      }
    }
    const r = await this.run("Looking for the vendor's apps in your tenant and reading their consent…", () =>
      ipc.vendorStatus(id, this.inputs, (e) => wizard.onEvent(e)),
    );
    if (r.ok) this.vendor = r.value;
    return r.ok;
  }

  /** Demo only: the signed-in user connects the vendor in its stand-in console. */
  async demoConnectVendor() {
    if (!this.providerId) return;
    const id = this.providerId;
    const r = await this.run("Going through the vendor's console and Entra's consent page…", () =>
      ipc.demoConnectVendor(id, this.inputs, (e) => wizard.onEvent(e)),
    );
    if (r.ok) this.vendor = r.value;
  }

  /** After the vendor's consent: the sync choice (Firezone's own sync, or SCIM). */
  async afterVendor(): Promise<boolean> {
    const p = this.provider;
    if (!p) return false;
    if (p.directorySync || p.scim) {
      this.scimWanted = true;
      wizard.goToStep(STEP.sync);
      return this.scim ? true : this.loadScim();
    }
    return this.toReview();
  }

  /** Reads the provisioning app (if any), its assignments and settings, for a re-run. */
  async loadScim(): Promise<boolean> {
    if (!this.providerId) return false;
    const id = this.providerId;
    const r = await this.run("Reading provisioning: the app, its assignments and its job…", () =>
      ipc.scimContext(id, this.inputs, (e) => wizard.onEvent(e)),
    );
    if (!r.ok) return false;
    const ctx = r.value;
    this.scim = ctx;
    this.token = ctx.token;
    this.assigned = [...ctx.assigned];
    if (ctx.saved) {
      this.syncAll = ctx.saved.syncAll;
      this.scimUrl = ctx.saved.tenantUrl;
      this.tokenExpires = ctx.saved.tokenExpires ?? "";
      this.scimWanted = true;
    }
    this.preview = null;
    this.report = null;
    return true;
  }

  async wantScim(on: boolean) {
    this.scimWanted = on;
    if (on && !this.scim) await this.loadScim();
  }

  async search(query: string, groups: boolean): Promise<Principal[]> {
    const r = await this.run("Searching the directory…", () => ipc.searchPeople(query, groups));
    return r.ok ? r.value : [];
  }

  assign(p: Principal) {
    if (this.assigned.some((a) => a.id === p.id)) return;
    this.assigned = [...this.assigned, { id: p.id, kind: p.kind, displayName: p.displayName }];
    this.preview = null;
  }

  unassign(id: string) {
    this.assigned = this.assigned.filter((a) => a.id !== id);
    this.preview = null;
  }

  async refreshPreview() {
    const r = await this.run("Working out who would sync…", () => ipc.previewSync(this.provider?.id ?? "", this.syncAll, this.syncAll ? [] : this.assigned));
    if (r.ok) this.preview = r.value;
  }

  async setToken(value: string, remember: boolean): Promise<boolean> {
    if (!this.providerId) return false;
    const id = this.providerId;
    this.inputErrors = {};
    const r = await this.run("Keeping the token…", () => ipc.setScimToken(value, remember, this.scimUrl, id, this.inputs));
    if (r.ok) this.token = r.value;
    else if (this.error?.kind === "invalid") this.inputErrors = { [this.error.detail.field]: this.error.detail.message };
    return r.ok;
  }

  async forgetToken() {
    if (!this.providerId) return;
    const id = this.providerId;
    const r = await this.run("Forgetting the token…", () => ipc.forgetScimToken(id, this.inputs));
    if (r.ok) this.token = r.value;
  }

  async useDemoEndpoint() {
    const r = await this.run("Using the demo provider's SCIM endpoint…", () => ipc.useDemoScim());
    if (r.ok) {
      this.scimUrl = r.value;
      this.token = { set: true, remembered: false, length: 0 };
    }
  }

  async verify() {
    this.inputErrors = {};
    this.report = null;
    const label = this.writeTests
      ? "Checking the endpoint as Entra would, with a test user and group (removed afterwards)…"
      : "Checking the endpoint as Entra would (read-only)…";
    const r = await this.run(label, () => ipc.verifyScim(this.scimUrl, this.writeTests));
    if (r.ok) this.report = r.value;
    else if (this.error?.kind === "invalid") this.inputErrors = { [this.error.detail.field]: this.error.detail.message };
  }

  /** Picks a certificate to trust for the check, in the system's file dialog (the app reads
   * it; the page never names a path). */
  async chooseTrustedCert() {
    this.inputErrors = {};
    const r = await this.run("Reading the certificate…", () => ipc.chooseScimCert());
    if (r.ok && r.value) this.trustedCert = r.value;
    else if (!r.ok && this.error?.kind === "invalid") this.inputErrors = { [this.error.detail.field]: this.error.detail.message };
  }

  async forgetTrustedCert() {
    const r = await this.run("Forgetting the certificate…", () => ipc.forgetScimCert());
    if (r.ok) this.trustedCert = "";
  }

  /** Computes the full plan, SCIM included, and shows Review. */
  async toReview(): Promise<boolean> {
    if (!this.providerId) return false;
    const id = this.providerId;
    this.inputErrors = {};
    const choice: ScimChoice | null = this.scimWanted
      ? {
          // A vendor's own directory sync has no SCIM endpoint: only its mode and groups.
          tenantUrl: this.provider?.directorySync ? "" : this.scimUrl,
          syncAll: this.syncAll,
          assign: this.syncAll ? [] : this.assigned,
          tokenExpires: this.tokenExpires || null,
          start: this.startAfterApply,
        }
      : null;
    const plan = await this.run("Planning every change, provisioning included…", () =>
      ipc.prepareSetup(id, this.inputs, this.secretChoice, choice, (e) => wizard.onEvent(e)),
    );
    if (!plan.ok) return false;
    this.plan = plan.value;
    wizard.goToStep(STEP.review);
    return true;
  }

  async refreshJob() {
    try {
      this.job = await ipc.scimStatus();
    } catch (e) {
      this.error = asIpcError(e);
    }
  }

  async provisionOnDemand(userId: string) {
    this.onDemand = null;
    const r = await this.run("Provisioning this user now…", () => ipc.scimOnDemand(userId));
    if (r.ok) this.onDemand = r.value;
  }

  async loadLogs() {
    const r = await this.run("Reading the provisioning log…", () => ipc.scimLogs());
    if (r.ok) this.logs = r.value;
  }

  private onApply(e: ApplyEvent) {
    switch (e.kind) {
      case "started":
        this.progress[e.seq] = { status: "running", detail: "" };
        break;
      case "done":
        this.progress[e.seq] = { status: "done", detail: e.detail };
        break;
      case "failed":
        this.progress[e.seq] = { status: "failed", detail: e.message };
        break;
      case "waitingForConsent":
        this.progress[e.seq] = { status: "consent", detail: "Waiting for a colleague's consent" };
        break;
      case "waiting":
        this.progress[e.seq] = { status: "running", detail: e.message };
        break;
      case "finished":
        break;
    }
  }

  async apply(): Promise<boolean> {
    this.applying = true;
    this.progress = {};
    const done = await this.run("Applying the plan…", () => ipc.applySetup(this.adoption, (e) => this.onApply(e)));
    this.applying = false;
    if (!done.ok) return false;
    this.done = done.value;
    this.job = done.value.scim?.status ?? null;
    this.plan = null;
    wizard.goToStep(STEP.done);
    return true;
  }

  async recheck() {
    const d = await this.run("Testing the connection again…", () => ipc.recheckSetup());
    if (d.ok) this.done = d.value;
  }

  async colleagueConsents() {
    const d = await this.run("A simulated Global Administrator is consenting…", () => ipc.demoColleagueConsents());
    if (d.ok) this.done = d.value;
  }

  async copy(outputId: string | null, what: string) {
    const r = await this.run("Copying…", () => ipc.copySecret(outputId));
    if (r.ok) {
      await this.handedOver(`${what} copied to the clipboard. It is cleared from the clipboard in a minute.`);
    }
  }

  async save(outputId: string, what: string) {
    const saved = await this.run("Saving…", () => ipc.saveOutput(outputId));
    if (saved.ok && saved.value) {
      if (outputId === "reminder") this.notice = `${what} saved to ${saved.value}.`;
      else await this.handedOver(`${what} saved to ${saved.value}.`);
    }
  }

  /** Saves a file of the SAML hand-over (metadata XML, certificate PEM or CER). */
  async saveSaml(which: SamlFile, what: string) {
    const saved = await this.run("Saving…", () => ipc.saveSamlFile(which));
    if (saved.ok && saved.value) this.notice = `${what} saved to ${saved.value}.`;
  }

  /** The lockout guard: an administrator of the service still signs in with a password. */
  async confirmPasswordAdmin() {
    const r = await this.run("Recording…", () => ipc.confirmPasswordAdmin());
    if (r.ok && this.done?.saml) this.done.saml.passwordAdminConfirmed = true;
  }

  async keep() {
    const r = await this.run("Saving to the keychain…", () => ipc.keepSecret());
    if (r.ok) {
      this.notice = "The client secret is in your OS keychain, for rotating it later.";
      if (this.done?.secret) this.done.secret.handedOver = true;
    }
  }

  async push(inputs: Record<string, string>) {
    this.inputErrors = {};
    const r = await this.run("Pushing the settings to the provider…", () => ipc.pushToProvider(inputs));
    if (r.ok) {
      this.pushed = r.value;
      await this.handedOver(`${r.value.created ? "Created" : "Updated"} ${r.value.object} ${r.value.id} in ${this.done?.providerName ?? "the provider"}.`);
    }
  }

  /** After the secret reached the provider: when old secrets wait to be retired, tests the new
   * one again so the retire button reflects it; then says what happened. */
  private async handedOver(notice: string) {
    if (this.done?.secret) this.done.secret.handedOver = true;
    if (this.done?.retire && !this.done.retire.ready) {
      const d = await this.run("Testing the new secret…", () => ipc.recheckSetup());
      if (d.ok) this.done = d.value;
    }
    this.notice = notice;
  }

  /** Removes the old secrets the rotation replaced. */
  async retire() {
    const before = this.done?.retire?.old.length ?? 0;
    const r = await this.run("Retiring the old secret…", () => ipc.retireOldSecrets());
    if (r.ok) {
      this.done = r.value;
      this.notice = `Retired ${before} old secret${before === 1 ? "" : "s"}: only the new one signs in now.`;
    }
  }

  /** Certificate rotation: Entra signs with the new certificate from now on. */
  async activateCertificate() {
    const r = await this.run("Making the new certificate active…", () => ipc.activateCertificate());
    if (r.ok) {
      this.done = r.value;
      this.notice = "Entra signs with the new certificate now. Sign in to the service once (or use Test sign-in), then remove the old certificate.";
    }
  }

  /** Certificate rotation: removes the old certificates once the new one signs. */
  async retireCertificates() {
    const r = await this.run("Removing the old certificate…", () => ipc.retireOldCertificates());
    if (r.ok) {
      this.done = r.value;
      this.notice = "The old certificate is gone: only the new one is on the app.";
    }
  }

  async undo() {
    const r = await this.run("Removing what the wizard created…", () => ipc.undoSetup());
    if (r.ok) {
      this.undone = r.value;
      this.done = null;
    }
  }

  reset() {
    this.plan = null;
    this.adoption = null;
    this.rotate = false;
    this.previous = null;
    this.previousStatus = null;
    this.previousError = null;
    this.done = null;
    this.progress = {};
    this.error = null;
    this.notice = null;
    this.pushed = null;
    this.undone = null;
    this.resetScim();
  }
}

export const setup = new Setup();
wizard.onSignOut = () => setup.reset();

/** Register app asks something of the admin: secrets or certificates already on the app (keep or
 * rotate), or the pre-flight found a blocker. (Its warnings are shown on Review too.) */
export function needsRegister(v: PlanView): boolean {
  return v.secrets.length > 0 || v.certificates.length > 0 || !v.preflight.canProceed;
}

/** Permissions & consent asks something: a permission only a colleague can grant. */
export function needsConsent(v: PlanView): boolean {
  return v.permissions.some((p) => p.grant === "colleague");
}
