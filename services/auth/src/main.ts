import { auth } from "./service.js";

await auth.main(import.meta.url);
