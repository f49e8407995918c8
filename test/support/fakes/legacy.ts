import { type FakeServer, fakeServer, json } from "./http-fake.ts";

export interface FakeLegacy extends FakeServer {
  /** `userId action resource` triples the backend allows; everything else is denied. */
  allow(userId: string, action: string, resource: string): void;
  calls: Array<{ userId: string; action: string; resource: string }>;
  /** `down`: answer 503; `hang`: never answer. */
  mode: "up" | "down" | "hang";
}

/** The pre-existing legacy album backend's permission endpoint: `POST /api/permissions` `{userId, action, resource}` -> `{allowed, reason}`. */
export async function fakeLegacyBackend(opts: { allowFrom?: string[]; token?: string } = {}): Promise<FakeLegacy> {
  const allowed = new Set<string>();
  // The handler reads the returned object, so tests can switch `mode` on it.
  const state: Pick<FakeLegacy, "mode" | "calls"> = { mode: "up", calls: [] };
  const server = await fakeServer((req, body, res) => {
    if (req.method !== "POST" || req.url !== "/api/permissions") return json(res, 404, { error: "not found" });
    if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) return json(res, 401, { error: "bad credentials" });
    if (state.mode === "hang") return;
    if (state.mode === "down") return json(res, 503, { error: "maintenance" });
    const q = JSON.parse(body.toString()) as { userId: string; action: string; resource: string };
    state.calls.push(q);
    const ok = allowed.has(`${q.userId} ${q.action} ${q.resource}`);
    json(res, 200, { allowed: ok, reason: ok ? "album_member" : "not_album_member" });
  }, opts.allowFrom);
  return Object.defineProperties(
    Object.assign(server, { allow: (u: string, a: string, r: string) => void allowed.add(`${u} ${a} ${r}`) }),
    {
      calls: { get: () => state.calls },
      mode: {
        get: () => state.mode,
        set: (m: FakeLegacy["mode"]) => {
          state.mode = m;
        },
      },
    },
  ) as FakeLegacy;
}
