import { type Runtime, wechatApp } from "@snapmesh/runtime";
import type { ShareCodeConfig } from "./config.js";
import { WechatCodeRenderer } from "./render.js";
import { StorageClient } from "./storage-client.js";

/** Where share-code keeps its QR images: the storage service, called on the caller's behalf. */
export type ImageStorage = Pick<StorageClient, "put" | "delete" | "signUrl">;

/** What share-code's handlers and its purge need besides their data and context; built once per process. */
export interface ShareCodeDeps {
  config: Pick<
    ShareCodeConfig,
    | "SHARECODE_CONTENT_TEMPLATE"
    | "SHARECODE_DEFAULT_TTL_SECONDS"
    | "SHARECODE_IMAGE_URL_TTL_SECONDS"
    | "SHARECODE_MAX_PARAMS_BYTES"
    | "SHARECODE_PURGE_GRACE_SECONDS"
  >;
  storage: ImageStorage;
  /** WeChat's code renderer, when its app credentials are configured (otherwise the provider is refused). */
  wechat: Pick<WechatCodeRenderer, "render"> | undefined;
}

export function shareCodeDeps(rt: Runtime<ShareCodeConfig>): ShareCodeDeps {
  const { config } = rt;
  const app = wechatApp(config);
  return {
    config,
    storage: new StorageClient(config.SNAPMESH_STORAGE_URL, config.SHARECODE_STORAGE_TIMEOUT_MS),
    wechat: app ? new WechatCodeRenderer(rt.egress(), app) : undefined,
  };
}
