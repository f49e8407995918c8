// The album as a mini-program user sees it, built only on the public REST APIs with a session token.
import { ApiError, call, describe, session, upload } from "./api.js";
import { h, notice } from "./dom.js";

interface Photo {
  key: string;
}
interface Social {
  likes: number;
  likedByMe: boolean;
  comments: number;
}
interface Comment {
  id: string;
  authorId: string;
  text: string;
  createdAt: string;
}

const PHOTOS = "snapmesh.album";

const photos = {
  list(): Photo[] {
    return JSON.parse(localStorage.getItem(`${PHOTOS}.${session.get()?.userId}`) ?? "[]");
  },
  save(list: Photo[]): void {
    localStorage.setItem(`${PHOTOS}.${session.get()?.userId}`, JSON.stringify(list));
  },
};

export function renderAlbum(root: HTMLElement): void {
  root.replaceChildren();
  const msg = notice();
  const s = session.get();
  if (!s || Date.parse(s.expiresAt) <= Date.now()) {
    root.append(
      signIn(msg, () => renderAlbum(root)),
      msg.el,
    );
    return;
  }
  const grid = h("ul", { class: "grid", "aria-label": "Photos" });
  const refresh = () => void showGrid(grid, msg, refresh);
  root.append(
    h(
      "section",
      { class: "bar" },
      h("span", {}, "Signed in as ", h("strong", { id: "whoami" }, s.userId)),
      h(
        "button",
        {
          type: "button",
          onclick: () => {
            session.clear();
            renderAlbum(root);
          },
        },
        "Sign out",
      ),
    ),
    uploader(msg, refresh),
    msg.el,
    grid,
    resolver(msg),
  );
  refresh();
}

type Provider =
  | { provider: "dev" }
  | { provider: "wechat"; appId: string }
  | { provider: "oidc"; issuer: string; audience: string };

/** Sign-in with each provider auth accepts (GET /v1/sessions/providers): dev, WeChat, OIDC. */
function signIn(msg: ReturnType<typeof notice>, done: () => void): HTMLElement {
  const forms = h("div", { class: "providers" });
  const card = h("section", { class: "card", "aria-label": "Sign in" }, h("h1", {}, "Sign in"), forms);
  call<{ providers: Provider[] }>("auth", "/v1/sessions/providers").then(
    ({ providers }) => {
      if (providers.length === 0)
        forms.append(h("p", {}, "auth accepts no sign-in provider: enable the dev provider, WeChat or OIDC."));
      for (const p of providers) forms.append(providerForm(p, msg, done));
    },
    (err: unknown) => msg.show(describe(err), "error"),
  );
  return card;
}

function providerForm(p: Provider, msg: ReturnType<typeof notice>, done: () => void): HTMLElement {
  const field =
    p.provider === "dev"
      ? { id: "user-id", label: "User id", button: "Sign in", body: (v: string) => ({ provider: "dev", userId: v }) }
      : p.provider === "wechat"
        ? {
            id: "wechat-code",
            label: `Code from wx.login() (mini-program ${p.appId})`,
            button: "Sign in with WeChat",
            body: (v: string) => ({ provider: "wechat", code: v }),
          }
        : {
            id: "oidc-token",
            label: `ID token from ${p.issuer} (audience ${p.audience})`,
            button: "Sign in with OIDC",
            body: (v: string) => ({ provider: "oidc", idToken: v }),
          };
  const input =
    p.provider === "oidc"
      ? h("textarea", { id: field.id, name: field.id, required: true, rows: "3", spellcheck: "false" })
      : h("input", { id: field.id, name: field.id, required: true, autocomplete: p.provider === "dev" ? "username" : "off" });
  return h(
    "form",
    {
      "aria-label": field.button,
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const res = await call<{ token: string; expiresAt: string; user: { id: string } }>("auth", "/v1/sessions", {
            method: "POST",
            json: field.body(input.value.trim()),
          });
          session.set({ token: res.token, expiresAt: res.expiresAt, userId: res.user.id });
          done();
        } catch (err) {
          msg.show(describe(err), "error");
        }
      },
    },
    p.provider === "dev"
      ? h("p", {}, "The dev provider signs in any user id (SNAPMESH_DEV_AUTH=1, as `npm start` runs).")
      : false,
    h("label", { for: field.id }, field.label),
    input,
    h("button", { type: "submit" }, field.button),
  );
}

function uploader(msg: ReturnType<typeof notice>, refresh: () => void): HTMLElement {
  const progress = h("progress", { max: "1", value: "0", "aria-label": "Upload progress", hidden: true });
  const input = h("input", { id: "file", type: "file", accept: "image/*" });
  const send = async (file: File | undefined) => {
    if (!file) return;
    // Type and size are the service's to judge: its refusal is shown in its own words.
    const userId = session.get()!.userId;
    const key = `photos/${userId}/${Date.now().toString(36)}-${file.name.replace(/[^A-Za-z0-9._-]/g, "_")}`;
    progress.hidden = false;
    progress.value = 0;
    try {
      await upload(key, file, (f) => {
        progress.value = f;
      });
      photos.save([{ key }, ...photos.list()]);
      msg.show(`uploaded ${file.name}`);
      refresh();
    } catch (err) {
      msg.show(describe(err), "error");
    } finally {
      progress.hidden = true;
      input.value = "";
    }
  };
  input.addEventListener("change", () => void send(input.files?.[0]));
  const zone = h(
    "section",
    { class: "drop card", "aria-label": "Upload a photo" },
    h("label", { for: "file" }, "Upload a photo (drop it here or choose a file)"),
    input,
    progress,
  );
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    void send(e.dataTransfer?.files[0]);
  });
  return zone;
}

async function showGrid(grid: HTMLElement, msg: ReturnType<typeof notice>, refresh: () => void): Promise<void> {
  const list = photos.list();
  grid.replaceChildren();
  if (list.length === 0) {
    grid.append(h("li", { class: "empty" }, "No photos yet."));
    return;
  }
  try {
    const { items } = await call<{ items: Array<{ key: string; url?: string; error?: { code: string; message: string } }> }>(
      "storage",
      "/v1/temp-urls",
      { method: "POST", json: { keys: list.slice(0, 50).map((p) => p.key) } },
    );
    for (const item of items) grid.append(photoCard(item.key, item.url, msg, refresh));
  } catch (err) {
    msg.show(describe(err), "error");
  }
}

function photoCard(key: string, url: string | undefined, msg: ReturnType<typeof notice>, refresh: () => void): HTMLElement {
  const photoId = encodeURIComponent(key);
  const name = key.split("/").at(-1) ?? key;
  const likes = h("span", { class: "likes", "data-testid": "likes" }, "…");
  const likeButton = h("button", { type: "button", "aria-pressed": "false", class: "like" }, "Like");
  const comments = h("ol", { class: "comments", "aria-label": `Comments on ${name}` });
  const more = h("button", { type: "button", hidden: true }, "More comments");
  const text = h("input", { id: `c-${photoId}`, maxlength: "2000", required: true });
  const share = h("div", { class: "share" });
  let cursor: string | null = null;
  let state: Social | undefined;

  const showState = (s: Social) => {
    state = s;
    likes.textContent = `${s.likes} ${s.likes === 1 ? "like" : "likes"}`;
    likeButton.textContent = s.likedByMe ? "Unlike" : "Like";
    likeButton.setAttribute("aria-pressed", String(s.likedByMe));
  };
  const loadComments = async (reset: boolean) => {
    const q = new URLSearchParams({ limit: "5", ...(cursor && !reset ? { cursor } : {}) });
    const page = await call<{ items: Comment[]; nextCursor: string | null }>("social", `/v1/photos/${photoId}/comments?${q}`);
    if (reset) comments.replaceChildren();
    for (const c of page.items) comments.append(h("li", {}, h("strong", {}, c.authorId), " ", c.text));
    cursor = page.nextCursor;
    more.hidden = !cursor;
  };
  void call<Social>("social", `/v1/photos/${photoId}/social`)
    .then(showState)
    .catch((err) => msg.show(describe(err), "error"));
  void loadComments(true).catch((err) => msg.show(describe(err), "error"));

  likeButton.addEventListener("click", async () => {
    try {
      const liked = state?.likedByMe ?? false;
      const res = await call<{ likes: number; likedByMe: boolean }>("social", `/v1/photos/${photoId}/like`, {
        method: liked ? "DELETE" : "PUT",
      });
      showState({ ...(state ?? { comments: 0 }), likes: res.likes, likedByMe: res.likedByMe });
    } catch (err) {
      msg.show(describe(err), "error");
    }
  });
  more.addEventListener("click", () => void loadComments(false).catch((err) => msg.show(describe(err), "error")));

  return h(
    "li",
    { class: "photo card", "data-key": key },
    url ? h("img", { src: url, alt: name, loading: "lazy" }) : h("p", { class: "notice error" }, "no temporary URL"),
    h("p", { class: "name" }, name),
    h("div", { class: "row" }, likeButton, likes),
    comments,
    more,
    h(
      "form",
      {
        class: "row",
        "aria-label": `Comment on ${name}`,
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            await call("social", `/v1/photos/${photoId}/comments`, { method: "POST", json: { text: text.value } });
            text.value = "";
            await loadComments(true);
          } catch (err) {
            msg.show(describe(err), "error");
          }
        },
      },
      h("label", { for: `c-${photoId}`, class: "visually-hidden" }, `Comment on ${name}`),
      text,
      h("button", { type: "submit" }, "Comment"),
    ),
    h(
      "div",
      { class: "row" },
      h(
        "button",
        {
          type: "button",
          onclick: async () => {
            try {
              const res = await call<{ code: string; imageUrl: string | null }>("share-code", "/v1/share-codes", {
                method: "POST",
                json: { page: "pages/album/index", params: { photo: key, owner: session.get()?.userId, name } },
              });
              share.replaceChildren(
                h("p", {}, "Share code ", h("code", { class: "code" }, res.code)),
                res.imageUrl ? h("img", { src: res.imageUrl, alt: `QR code for share code ${res.code}`, class: "qr" }) : "",
              );
            } catch (err) {
              msg.show(describe(err), "error");
            }
          },
        },
        "Share",
      ),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: async () => {
            try {
              await call("storage", `/v1/objects/${key.split("/").map(encodeURIComponent).join("/")}`, { method: "DELETE" });
            } catch (err) {
              if (!(err instanceof ApiError && err.status === 404)) {
                msg.show(describe(err), "error");
                return;
              }
            }
            photos.save(photos.list().filter((p) => p.key !== key));
            msg.show(`deleted ${name}`);
            refresh();
          },
        },
        "Delete",
      ),
    ),
    share,
  );
}

function resolver(msg: ReturnType<typeof notice>): HTMLElement {
  const input = h("input", { id: "code", maxlength: "32", autocomplete: "off", required: true });
  const out = h("div", { class: "resolved", "aria-live": "polite" });
  return h(
    "form",
    {
      class: "card",
      "aria-label": "Open a share code",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const r = await call<{ code: string; page: string; params: Record<string, unknown>; scans: number }>(
            "share-code",
            `/v1/share-codes/${encodeURIComponent(input.value.trim())}`,
          );
          out.replaceChildren(
            h("p", {}, "Opens ", h("code", {}, r.page), ` — scanned ${r.scans} ${r.scans === 1 ? "time" : "times"}`),
            h("pre", {}, JSON.stringify(r.params, null, 2)),
          );
        } catch (err) {
          msg.show(describe(err), "error");
        }
      },
    },
    h("h2", {}, "Open a share code"),
    h("label", { for: "code" }, "Share code"),
    input,
    h("button", { type: "submit" }, "Open"),
    out,
  );
}
