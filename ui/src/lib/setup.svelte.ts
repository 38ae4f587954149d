// State of the setup steps (Choose service → Done). Business rules live in Rust.
import { asIpcError, ipc } from "../ipc";
import type { ApplyEvent, DoneView, IpcError, PlanView, ProviderInfo, PushResult, Undone } from "../ipc";
import { STEP } from "./steps";
import { wizard } from "./wizard.svelte";

export type StepStatus = "waiting" | "running" | "done" | "failed" | "consent";

export interface StepProgress {
  status: StepStatus;
  detail: string;
}

class Setup {
  providers = $state<ProviderInfo[] | null>(null);
  providerId = $state<string | null>(null);
  inputs = $state<Record<string, string>>({});
  secretDays = $state<number | null>(null);
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

  choose(id: string) {
    if (this.providerId === id) return;
    this.providerId = id;
    this.inputs = {};
    this.inputErrors = {};
    this.plan = null;
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

  /** Checks the inputs, reads the tenant and computes the plan; then shows Register app. */
  async prepare(): Promise<boolean> {
    if (!this.providerId) return false;
    this.inputErrors = {};
    const id = this.providerId;
    const checked = await this.run("Checking your inputs…", () => ipc.checkInputs(id, this.inputs, this.secretDays));
    if (!checked.ok) return false;
    const plan = await this.run("Reading the tenant: its policy, your roles, a sample of users, and what already exists…", () =>
      ipc.prepareSetup(id, this.inputs, this.secretDays, (e) => wizard.onEvent(e)),
    );
    if (!plan.ok) return false;
    this.plan = plan.value;
    this.done = null;
    this.progress = {};
    this.undone = null;
    wizard.goToStep(STEP.register);
    return true;
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
      case "finished":
        break;
    }
  }

  async apply(): Promise<boolean> {
    this.applying = true;
    this.progress = {};
    const done = await this.run("Applying the plan…", () => ipc.applySetup((e) => this.onApply(e)));
    this.applying = false;
    if (!done.ok) return false;
    this.done = done.value;
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
      this.notice = `${what} copied to the clipboard. It is cleared from the clipboard in a minute.`;
      if (this.done?.secret) this.done.secret.handedOver = true;
    }
  }

  async save(outputId: string, what: string) {
    const saved = await this.run("Saving…", () => ipc.saveOutput(outputId));
    if (saved.ok && saved.value) {
      this.notice = `${what} saved to ${saved.value}.`;
      if (this.done?.secret && outputId !== "reminder") this.done.secret.handedOver = true;
    }
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
      this.notice = `${r.value.created ? "Created" : "Updated"} the identity provider ${r.value.id} in ${this.done?.providerName ?? "the provider"}.`;
      if (this.done?.secret) this.done.secret.handedOver = true;
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
    this.done = null;
    this.progress = {};
    this.error = null;
    this.notice = null;
    this.pushed = null;
    this.undone = null;
  }
}

export const setup = new Setup();
wizard.onSignOut = () => setup.reset();
