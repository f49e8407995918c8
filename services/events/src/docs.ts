import { z } from "zod";
import type { CommandDef, EventDef } from "./define.js";
import { catalog } from "./index.js";

const anchor = (type: string) => type.replace(/[^a-z0-9-]/g, "-");

/** The Markdown event catalog, generated from the same definitions the services validate with. */
export function renderCatalog(defs: readonly EventDef[] = catalog): string {
  const out: string[] = [
    "# snapmesh event catalog",
    "",
    "Generated from `services/events/src` by `npm run events:docs`; do not edit by hand.",
    "",
    "Commands go to the owning service (`POST /` as a CloudEvent, or its REST route) and are answered by their",
    "reply event. Facts are published through the outbox to the JetStream stream (or `K_SINK`) after the change",
    "commits. Every event has `source` = `/snapmesh/<service>` when snapmesh makes it.",
    "",
    "Facts carry their producer's signature in the `dssematerial` attribute (the CloudEvents verifiability",
    "extension: a DSSE envelope, Ed25519). A service applies a fact only when it is signed by a key it trusts for",
    "the producer the `source` names; an unsigned fact gets 401 `event_unsigned`, a forged one 403.",
    "",
    "| type | kind | service | description |",
    "|---|---|---|---|",
    ...defs.map(
      (d) => `| [\`${d.type}\`](#${anchor(d.type)}) | ${d.kind} | ${d.service} | ${d.description.replace(/\|/g, "\\|")} |`,
    ),
    "",
  ];
  for (const d of defs) {
    out.push(`## ${d.type}`, "", `- kind: **${d.kind}**`, `- service: \`${d.service}\``);
    const replyDef = (d as CommandDef).reply;
    if (replyDef) out.push(`- reply: [\`${replyDef.type}\`](#${anchor(replyDef.type)})`);
    out.push(
      "",
      d.description,
      "",
      "```json",
      JSON.stringify(z.toJSONSchema(d.data, { io: "input", unrepresentable: "any" }), null, 2),
      "```",
      "",
    );
  }
  return `${out.join("\n").trimEnd()}\n`;
}
