/** The wizard's eight steps, in order. `built` says whether the step works yet. */
export interface StepInfo {
  id: string;
  title: string;
  built: boolean;
  /** What the step will do, in one sentence. */
  purpose: string;
}

export const STEPS: StepInfo[] = [
  { id: "signin", title: "Sign in", built: true, purpose: "Sign in to your Microsoft Entra tenant and see your roles, licence tier and what they allow." },
  { id: "service", title: "Choose service", built: true, purpose: "Pick the service to connect (Cloudflare One, Pomerium, …) and enter only what Entra cannot know, such as a team name." },
  { id: "register", title: "Register app", built: true, purpose: "Create the app registration or enterprise app with the right redirect URIs, claims and credentials." },
  { id: "consent", title: "Permissions & consent", built: true, purpose: "Grant the API permissions the service needs, with a consent link for a colleague when your role cannot." },
  { id: "sync", title: "Sync mode", built: true, purpose: "Choose assigned groups only or all groups, with a preview of who would sync." },
  { id: "scim", title: "SCIM", built: true, purpose: "Check the service's SCIM endpoint as Entra would, then configure, test and start provisioning." },
  { id: "review", title: "Review & apply", built: true, purpose: "See every change before anything is written, then apply it with live progress and a journal." },
  { id: "done", title: "Done", built: true, purpose: "Run live connection tests and get what to paste into the service, with warnings such as expiring secrets." },
];

/** Step indexes used in code. */
export const STEP = { signin: 0, service: 1, register: 2, consent: 3, sync: 4, scim: 5, review: 6, done: 7 } as const;
