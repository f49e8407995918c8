#!/usr/bin/env node
// `kubectl snapmesh …`: kubectl runs any `kubectl-<name>` on PATH as the plugin `<name>`; this is the snapmesh CLI.
import "./snapmesh.mjs";
