import { describe, expect, it } from "vitest";
import { localTime } from "./time";

// Local time is the admin's time zone. The tests run in Pacific/Auckland (ui/vite.config.ts),
// thirteen hours ahead of UTC in December, so a day or time taken in UTC shows here.
const at = (y: number, m: number, d: number, h: number, min: number) => new Date(y, m - 1, d, h, min);
const hm = (x: Date) => x.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });

describe("localTime", () => {
  const now = at(2026, 12, 2, 18, 0);

  it("says today, yesterday or tomorrow for nearby days, in local time", () => {
    const today = at(2026, 12, 2, 16, 13);
    expect(localTime(today.toISOString(), now)).toBe(`today at ${hm(today)}`);
    const yesterday = at(2026, 12, 1, 23, 59);
    expect(localTime(yesterday.toISOString(), now)).toBe(`yesterday at ${hm(yesterday)}`);
    const tomorrow = at(2026, 12, 3, 1, 0);
    expect(localTime(tomorrow.toISOString(), now)).toBe(`tomorrow at ${hm(tomorrow)}`);
  });

  it("names the day further away, and the year only when it is not this one", () => {
    const earlier = localTime(at(2026, 11, 3, 9, 5).toISOString(), now);
    expect(earlier).toMatch(/3/);
    expect(earlier).not.toMatch(/2026/);
    expect(localTime(at(2025, 11, 3, 9, 5).toISOString(), now)).toMatch(/2025/);
  });

  it("counts days in the admin's zone, not in UTC", () => {
    expect(new Date("2026-12-02T10:30:00Z").getHours(), "the tests' zone is pinned").toBe(23);
    // 20:00 UTC is 09:00 the next morning in Auckland; 10:30 UTC was 23:30 the evening before.
    const morning = new Date("2026-12-02T20:00:00Z");
    const evening = new Date("2026-12-02T10:30:00Z");
    expect(localTime(evening.toISOString(), morning)).toBe(`yesterday at ${hm(evening)}`);
    expect(hm(evening)).toMatch(/23|11/);
  });

  it("leaves anything that is not a time as it is", () => {
    expect(localTime("soon", now)).toBe("soon");
  });
});
