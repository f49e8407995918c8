// The album speaks to the services' public REST APIs like any app: a session token in the Authorization header.
export interface MeshInfo {
  services: Array<{
    name: string;
    url: string;
    healthy: boolean;
    ready: boolean;
    readiness: Record<string, unknown>;
    version: string | null;
    revision: string | null;
  }>;
  stream: string;
  deadLetterStream: string;
  egress: { proxy: string | null };
  replay: string;
}

/** An API error as the service words it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let mesh: Promise<MeshInfo> | undefined;

export function meshInfo(fresh = false): Promise<MeshInfo> {
  if (fresh || !mesh) mesh = getJson<MeshInfo>("/api/mesh");
  return mesh;
}

export async function serviceUrl(name: string): Promise<string> {
  const s = (await meshInfo()).services.find((x) => x.name === name);
  if (!s) throw new ApiError(0, "unknown_service", `the console does not know the service ${name}`);
  return s.url;
}

const TOKEN = "snapmesh.session";

export const session = {
  get(): { token: string; userId: string; expiresAt: string } | undefined {
    const raw = localStorage.getItem(TOKEN);
    return raw ? JSON.parse(raw) : undefined;
  },
  set(value: { token: string; userId: string; expiresAt: string }): void {
    localStorage.setItem(TOKEN, JSON.stringify(value));
  },
  clear(): void {
    localStorage.removeItem(TOKEN);
  },
};

export async function getJson<T>(url: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(url, init);
  return answer<T>(res);
}

async function answer<T>(res: Response): Promise<T> {
  const text = await res.text();
  const body = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    const e = body?.error ?? {};
    if (res.status === 401) session.clear();
    throw new ApiError(res.status, e.code ?? "http_error", e.message ?? `${res.status} ${res.statusText}`);
  }
  return body as T;
}

/** A call to a service's REST API with the session token (when signed in). */
export async function call<T>(service: string, path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const headers = new Headers(init.headers);
  const s = session.get();
  if (s) headers.set("authorization", `Bearer ${s.token}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("content-type", "application/json");
    body = JSON.stringify(init.json);
  }
  const res = await fetch(`${await serviceUrl(service)}${path}`, { ...init, headers, body });
  return answer<T>(res);
}

/** An upload with progress (fetch has no upload progress): PUT /v1/objects/{key} on storage. */
export async function upload(key: string, file: File, onProgress: (fraction: number) => void): Promise<unknown> {
  const url = `${await serviceUrl("storage")}/v1/objects/${key.split("/").map(encodeURIComponent).join("/")}`;
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    const s = session.get();
    if (s) xhr.setRequestHeader("authorization", `Bearer ${s.token}`);
    xhr.setRequestHeader("content-type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      const body = xhr.responseText ? JSON.parse(xhr.responseText) : undefined;
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else {
        if (xhr.status === 401) session.clear();
        reject(new ApiError(xhr.status, body?.error?.code ?? "http_error", body?.error?.message ?? `HTTP ${xhr.status}`));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, "network_error", "the upload could not reach storage"));
    xhr.send(file);
  });
}

/** Text for an error shown to the user: the API's own words and code. */
export function describe(err: unknown): string {
  return err instanceof ApiError ? `${err.message} (${err.code})` : String((err as Error).message ?? err);
}
