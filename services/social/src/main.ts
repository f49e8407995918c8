import { social } from "./service.js";

await social.main(import.meta.url);
