// NATS_URL with credentials: nats.js takes a password that starts with a digit for a port and cannot connect, so the
// runtime lifts `user:pass@` (or `token@`) out of the URL into the connection's options.
import { describe, expect, it } from "vitest";
import { natsServerOptions } from "../src/nats.js";

describe("natsServerOptions", () => {
  it("lifts a user and password out of the URL, a password that starts with a digit included", () => {
    expect(natsServerOptions("nats://console:7e1f00@nats.nats.svc:4222")).toEqual({
      servers: ["nats://nats.nats.svc:4222"],
      user: "console",
      pass: "7e1f00",
    });
  });

  it("decodes percent-encoded credentials and reads a lone userinfo as a token", () => {
    expect(natsServerOptions("tls://a%40b:p%3Aw%2Fd@10.0.0.5:4222")).toEqual({
      servers: ["tls://10.0.0.5:4222"],
      user: "a@b",
      pass: "p:w/d",
    });
    expect(natsServerOptions("nats://s3cr3t@127.0.0.1:4222")).toEqual({ servers: ["nats://127.0.0.1:4222"], token: "s3cr3t" });
  });

  it("keeps a list of servers, and a URL without credentials as it is", () => {
    expect(natsServerOptions("nats://u:1pw@a:4222, nats://u:1pw@b:4222")).toEqual({
      servers: ["nats://a:4222", "nats://b:4222"],
      user: "u",
      pass: "1pw",
    });
    expect(natsServerOptions("nats://127.0.0.1:4222")).toEqual({ servers: ["nats://127.0.0.1:4222"] });
  });
});
