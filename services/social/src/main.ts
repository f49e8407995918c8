import { social } from "./service.js";

// Not awaited: the image runs this bundled as a script (CommonJS), where there is no top-level await.
void social.main(import.meta.url);
