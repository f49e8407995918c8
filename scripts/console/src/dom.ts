/** A small element builder: attributes, then children (strings become text, never HTML). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | ((e: Event) => void) | undefined> = {},
  ...children: Array<Node | string | undefined | false>
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children) if (c !== undefined && c !== false) el.append(c);
  return el;
}

/** A table's header: one row of column headings. */
export function tableHead(columns: readonly string[]): HTMLTableSectionElement {
  return h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, c))));
}

/** A live region for messages: errors as the API words them, confirmations. */
export function notice(): { el: HTMLElement; show(text: string, kind?: "error" | "ok"): void } {
  const el = h("p", { class: "notice", role: "status", "aria-live": "polite" });
  return {
    el,
    show(text, kind = "ok") {
      el.textContent = text;
      el.className = `notice ${kind}`;
    },
  };
}
