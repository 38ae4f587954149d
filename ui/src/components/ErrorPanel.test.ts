import { describe, expect, it } from "vitest";
import { render, screen } from "@testing-library/svelte";
import ErrorPanel from "./ErrorPanel.svelte";

describe("ErrorPanel", () => {
  it("shows Graph's codes and ids for an apply that stopped part-way", () => {
    render(ErrorPanel, {
      error: {
        kind: "apply",
        detail: {
          message: "Step 3 (Grant the permissions) failed: you are not allowed to do this.",
          cause: {
            message: "You are not allowed to do this.",
            code: "Authorization_RequestDenied",
            status: 403,
            requestId: "1f376607-c34c-4d5e-bad0-b6c436c8cc5f",
            clientRequestId: "7a5ee6da-56d4-4eeb-8e98-7c51785aa85f",
            method: "POST",
            path: "/oauth2PermissionGrants",
          },
        },
      },
      title: "Applying stopped",
    });
    expect(screen.getByText(/Step 3 \(Grant the permissions\) failed/)).toBeTruthy();
    expect(screen.getByText("Authorization_RequestDenied")).toBeTruthy();
    expect(screen.getByText("1f376607-c34c-4d5e-bad0-b6c436c8cc5f")).toBeTruthy();
    expect(screen.getByText("POST /oauth2PermissionGrants")).toBeTruthy();
  });

  it("names the provider's HTTP status when its API refused a push", () => {
    render(ErrorPanel, { error: { kind: "provider", detail: { message: "The provider's API refused the request (HTTP 403): Authentication error", status: 403 } } });
    expect(screen.getByText("403")).toBeTruthy();
  });
});
