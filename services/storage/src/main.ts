import { storage } from "./service.js";

// Not awaited: the image runs this bundled as a script (CommonJS), where there is no top-level await.
void storage.main(import.meta.url);
