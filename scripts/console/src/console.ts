// The mesh console: services, the facts as they pass, consumer lag, the dead-letter stream with replay, egress.
import { describe, getJson, type MeshInfo, meshInfo } from "./api.js";
import { h, notice, tableHead } from "./dom.js";

interface Fact {
  /** The stream sequence of a fact from the history; null for one seen live (a plain subscription has none). */
  seq: number | null;
  subject: string;
  event: { id: string; type: string; source: string; subject?: string; time: string; data?: unknown };
}

let facts: EventSource | undefined;
let polling: ReturnType<typeof setInterval> | undefined;

/** Leaving the console (or drawing it again): its fact stream and its polling stop. */
export function stopConsole(): void {
  facts?.close();
  facts = undefined;
  clearInterval(polling);
  polling = undefined;
}

export function renderConsole(root: HTMLElement): void {
  root.replaceChildren();
  const msg = notice();
  const services = h("ul", { class: "services", "aria-label": "Services" });
  const flowEl = h("div", { class: "flow", "aria-label": "Mesh flow" });
  const filter = h("input", { id: "fact-filter", placeholder: "type, source or subject", autocomplete: "off" });
  const rows = h("tbody", { id: "facts" });
  const detail = h("pre", { class: "detail", "aria-live": "polite", tabindex: "0" }, "Select a fact to see the whole event.");
  const consumers = h("tbody", {});
  const dead = h("tbody", { id: "dead-letters" });
  const egress = h("div", {});
  const token = h("input", { id: "operator-token", type: "password", autocomplete: "off" });
  const flowState: Flow = { facts: new Map(), subscribers: [], gateway: null, outbound: new Map() };

  root.append(
    h("h1", {}, "Mesh console"),
    msg.el,
    h("section", { "aria-labelledby": "h-services" }, h("h2", { id: "h-services" }, "Services"), services, flowEl),
    h(
      "section",
      { "aria-labelledby": "h-facts" },
      h("h2", { id: "h-facts" }, "Facts as they pass"),
      h("label", { for: "fact-filter" }, "Filter"),
      filter,
      h(
        "div",
        { class: "scroll" },
        h("table", { "aria-label": "Facts" }, tableHead(["seq", "type", "source", "subject", "id", "time"]), rows),
      ),
      detail,
    ),
    h(
      "section",
      { "aria-labelledby": "h-consumers" },
      h("h2", { id: "h-consumers" }, "Consumers"),
      h(
        "table",
        { "aria-label": "Consumer lag" },
        tableHead(["consumer", "pending (lag)", "awaiting ack", "redelivered"]),
        consumers,
      ),
    ),
    h(
      "section",
      { "aria-labelledby": "h-dlq" },
      h("h2", { id: "h-dlq" }, "Dead letters"),
      h("label", { for: "operator-token" }, "Operator token (needed to replay)"),
      token,
      h("table", { "aria-label": "Dead letters" }, tableHead(["seq", "type", "consumer", "reason", "failed at", ""]), dead),
    ),
    h("section", { "aria-labelledby": "h-egress" }, h("h2", { id: "h-egress" }, "Egress"), egress),
  );

  const matches = (f: Fact) => {
    const q = filter.value.trim().toLowerCase();
    return !q || [f.event.type, f.event.source, f.event.subject ?? ""].some((v) => v.toLowerCase().includes(q));
  };
  filter.addEventListener("input", () => {
    for (const tr of rows.querySelectorAll<HTMLTableRowElement>("tr")) tr.hidden = !matches(JSON.parse(tr.dataset.fact!));
  });

  stopConsole();
  facts = new EventSource("/api/facts");
  facts.addEventListener("fact", (e) => {
    const f = JSON.parse((e as MessageEvent).data) as Fact;
    const service = f.event.source.split("/")[2] ?? "?";
    flowState.facts.set(service, (flowState.facts.get(service) ?? 0) + 1);
    const tr = h(
      "tr",
      { tabindex: "0", "data-type": f.event.type },
      ...[
        f.seq === null ? "live" : String(f.seq),
        f.event.type,
        f.event.source,
        f.event.subject ?? "",
        f.event.id,
        f.event.time,
      ].map((v) => h("td", {}, v)),
    );
    tr.dataset.fact = JSON.stringify(f);
    tr.hidden = !matches(f);
    const open = () => {
      detail.textContent = JSON.stringify(f.event, null, 2);
    };
    tr.addEventListener("click", open);
    tr.addEventListener("keydown", (k) => k.key === "Enter" && open());
    rows.append(tr);
    while (rows.children.length > 500) rows.firstElementChild?.remove();
    drawFlow(flowEl, flowState);
  });
  facts.onerror = () => msg.show("the fact stream is reconnecting…", "error");
  facts.onopen = () => msg.show("");

  const refresh = async () => {
    try {
      const [mesh, c, d, eg] = await Promise.all([
        meshInfo(true),
        getJson<{ consumers: Array<{ name: string; pending: number; ackPending: number; redelivered: number }> }>(
          "/api/consumers",
        ),
        getJson<{ deadLetters: Array<{ seq: number; type: string; consumer: string; reason: string; failedAt: string }> }>(
          "/api/dead-letters",
        ),
        getJson<{
          proxy: string | null;
          calls: Array<{ service: string; host: string; outcome: string; count: number }>;
          last: Array<{ service: string; host: string; outcome: string; status: number; at: string; count: number }>;
        }>("/api/egress"),
      ]);
      drawServices(services, mesh);
      flowState.subscribers = c.consumers.map((x) => x.name);
      flowState.gateway = eg.proxy;
      flowState.outbound = new Map();
      for (const x of eg.calls) flowState.outbound.set(x.service, (flowState.outbound.get(x.service) ?? 0) + x.count);
      drawFlow(flowEl, flowState);
      consumers.replaceChildren(
        ...c.consumers.map((x) =>
          h("tr", {}, ...[x.name, x.pending, x.ackPending, x.redelivered].map((v) => h("td", {}, String(v)))),
        ),
      );
      dead.replaceChildren(
        ...d.deadLetters.map((x) =>
          h(
            "tr",
            { "data-seq": String(x.seq) },
            ...[String(x.seq), x.type, x.consumer, x.reason, x.failedAt].map((v) => h("td", {}, v)),
            h(
              "td",
              {},
              x.type !== "undecodable" &&
                h(
                  "button",
                  {
                    type: "button",
                    onclick: async () => {
                      try {
                        await getJson(`/api/dead-letters/${x.seq}/replay`, {
                          method: "POST",
                          headers: { authorization: `Bearer ${token.value}` },
                        });
                        msg.show(`replayed dead letter ${x.seq} (${x.type})`);
                        void refresh();
                      } catch (err) {
                        msg.show(describe(err), "error");
                      }
                    },
                  },
                  `Replay ${x.seq}`,
                ),
            ),
          ),
        ),
      );
      egress.replaceChildren(
        h("p", {}, "Gateway: ", h("code", {}, eg.proxy ?? "none (direct)")),
        eg.last.length
          ? h(
              "table",
              { id: "egress-calls" },
              h("caption", {}, "Last outbound calls, newest first (status 0: no answer)"),
              tableHead(["last at", "service", "host", "status", "outcome", "calls"]),
              h(
                "tbody",
                {},
                ...eg.last.map((x) =>
                  h(
                    "tr",
                    { "data-host": x.host },
                    ...[x.at, x.service, x.host, String(x.status), x.outcome, String(x.count)].map((v) => h("td", {}, v)),
                  ),
                ),
              ),
            )
          : h("p", {}, "No outbound calls yet."),
      );
    } catch (err) {
      msg.show(describe(err), "error");
    }
  };
  void refresh();
  polling = setInterval(() => void refresh(), 3000);
}

function drawServices(list: HTMLElement, mesh: MeshInfo): void {
  list.replaceChildren(
    ...mesh.services.map((s) =>
      h(
        "li",
        { class: `svc ${s.ready ? "ready" : "not-ready"}`, "data-service": s.name },
        h("strong", {}, s.name),
        s.version ? h("span", { class: "version", title: `revision ${s.revision ?? "unknown"}` }, ` ${s.version}`) : "",
        ` ${s.ready ? "ready" : "not ready"} · ${s.healthy ? "live" : "down"} · `,
        h("code", {}, s.url),
        s.ready ? "" : h("span", { class: "reason" }, ` ${String(s.readiness.status ?? s.readiness.error ?? "")}`),
      ),
    ),
  );
}

/** Each service → the stream, with the facts it published (of those the page has seen), and the stream → its consumers. */
/** What the flow picture shows: facts per producer, the subscribers, and outbound calls per service. */
interface Flow {
  facts: Map<string, number>;
  subscribers: string[];
  /** The egress gateway's address, or null when calls leave directly. */
  gateway: string | null;
  outbound: Map<string, number>;
}

function drawFlow(el: HTMLElement, flow: Flow): void {
  const stream = () => h("span", { class: "node stream" }, "JetStream");
  const plural = (n: number, one: string) => `${n} ${n === 1 ? one : `${one}s`}`;
  el.replaceChildren(
    ...[...flow.facts].map(([svc, n]) =>
      h("p", {}, h("span", { class: "node" }, svc), h("span", { class: "arrow" }, ` —${plural(n, "fact")}→ `), stream()),
    ),
    h("p", {}, stream(), h("span", { class: "arrow" }, " → "), ...flow.subscribers.map((c) => h("span", { class: "node" }, c))),
    ...[...flow.outbound].map(([svc, n]) =>
      h(
        "p",
        { "data-egress": svc },
        h("span", { class: "node" }, svc),
        h("span", { class: "arrow" }, ` —${plural(n, "call")}→ `),
        h("span", { class: "node gateway" }, flow.gateway ? "egress gateway" : "outside (direct)"),
      ),
    ),
  );
}
