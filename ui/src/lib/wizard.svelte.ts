// The wizard's UI state. Business rules live in Rust; this only tracks what is on screen.
import { asIpcError, ipc } from "../ipc";
import type { AppInfo, IpcError, SignInEvent, SignInResult } from "../ipc";

export type View = "welcome" | "demo" | "signin" | "summary" | "step";

export interface Progress {
  phase: "starting" | "browser" | "device" | "redeeming";
  url?: string;
  device?: { userCode: string; verificationUri: string; expiresAt: string; message: string | null };
}

class Wizard {
  view = $state<View>("welcome");
  /** Index into STEPS of the step shown when `view` is "step". */
  stepIndex = $state(0);
  result = $state<SignInResult | null>(null);
  info = $state<AppInfo | null>(null);
  /** Shown on the welcome screen when a saved sign-in could not be resumed. */
  resumeNote = $state<string | null>(null);
  resuming = $state(false);
  progress = $state<Progress | null>(null);
  error = $state<IpcError | null>(null);

  onEvent(e: SignInEvent) {
    switch (e.kind) {
      case "tenantFound":
        this.progress = { phase: "starting" };
        break;
      case "browserOpened":
        this.progress = { phase: "browser", url: e.url };
        break;
      case "deviceCode":
        this.progress = {
          phase: "device",
          device: { userCode: e.userCode, verificationUri: e.verificationUri, expiresAt: e.expiresAt, message: e.message },
        };
        break;
      case "redeeming":
        this.progress = { ...(this.progress ?? {}), phase: "redeeming" };
        break;
    }
  }

  /** Runs a sign-in, streaming progress; lands on the tenant summary or shows the error. */
  async signIn(run: (onEvent: (e: SignInEvent) => void) => Promise<SignInResult>): Promise<boolean> {
    this.error = null;
    this.progress = { phase: "starting" };
    try {
      const result = await run((e) => this.onEvent(e));
      this.result = result;
      this.resumeNote = null;
      this.view = "summary";
      this.stepIndex = 0;
      return true;
    } catch (e) {
      const err = asIpcError(e);
      if (err.kind !== "cancelled") this.error = err;
      return false;
    } finally {
      this.progress = null;
    }
  }

  cancel() {
    void ipc.signInCancel();
  }

  async start() {
    this.info = await ipc.appInfo().catch(() => null);
    this.resuming = true;
    try {
      const outcome = await ipc.resumeSession();
      if (outcome.kind === "resumed") {
        this.result = outcome.result;
        this.view = "summary";
      } else if (outcome.kind === "failed") {
        this.resumeNote = `Your saved sign-in for ${outcome.userPrincipalName} could not be resumed: ${outcome.message}`;
      }
    } catch {
      // Nothing to resume: the welcome screen is the right place.
    } finally {
      this.resuming = false;
    }
  }

  async signOut() {
    try {
      await ipc.signOut();
    } catch (e) {
      this.error = asIpcError(e);
    }
    this.result = null;
    this.view = "welcome";
    this.stepIndex = 0;
    this.onSignOut?.();
  }

  /** Set by the setup store, which forgets its state on sign-out. */
  onSignOut: (() => void) | null = null;

  goToStep(index: number) {
    this.error = null;
    if (index === 0) {
      this.view = this.result ? "summary" : "welcome";
    } else {
      this.view = "step";
    }
    this.stepIndex = index;
  }
}

export const wizard = new Wizard();
