/**
 * The chart's value sets: each is rendered and schema-checked (chart.test.ts) and installed, upgraded and
 * uninstalled on a real API server in a restricted namespace (install.test.ts). A value set that would
 * have caught a defect stays here.
 */
/** [name, --set values, release name (default photos)] */
export const MATRIX: Array<[string, string[], string?]> = [
  ["defaults", []],
  ["no Knative Eventing (JetStream consumers)", ["eventing.enabled=false"]],
  [
    "NatsJetStreamBroker class with a dead-letter sink",
    ["eventing.broker.class=natss", "eventing.deadLetterUri=http://dlq.photos.svc.cluster.local"],
  ],
  ["egress through the proxy pair", ["egress.mode=proxy", "egress.allowHosts={api.weixin.qq.com,legacy.internal.example:8443}"]],
  [
    "proxy egress: the README's --set nodeSelector (a boolean), S3, a wildcard host and a host:port",
    [
      "egress.mode=proxy",
      "egress.allowHosts={api.weixin.qq.com,*.weixin.qq.com,legacy.internal.example:8443}",
      "egress.proxy.nodeSelector.snapmesh/egress=true",
      "egress.noProxy={db.example.com}",
    ],
  ],
  [
    "istio egress through the egress gateway",
    ["egress.mode=istio", "egress.allowHosts={api.weixin.qq.com,legacy.internal.example:8443}"],
  ],
  [
    "egress through Cilium",
    ["egress.mode=cilium", "egress.cilium.egressIP=203.0.113.10", "egress.cilium.nodeSelector.egress=true"],
  ],
  [
    "NATS object storage, dev auth, WeChat and legacy",
    [
      "storage.backend=nats",
      "auth.devAuth=true",
      "auth.wechat.secretName=wechat",
      "auth.legacy.permissionUrl=https://legacy.example/api/permissions",
      "social.permissionCheck=true",
    ],
  ],
  [
    "share-code off, no migration job, pinned image",
    ["services.shareCode.enabled=false", "database.migrationJob=false", "image.registry=registry.example", "image.tag=1.2.3"],
  ],
  [
    "the web console with Knative Eventing: its Trigger, an operator token, a public URL for the album",
    [
      "console.enabled=true",
      "console.operatorTokenSecret=console-operator",
      "console.publicUrls.auth=https://auth.photos.example.com",
      "image.digests.console=sha256:" + "c".repeat(64),
    ],
  ],
  [
    "the web console on JetStream, NATS credentials from a Secret, proxy egress",
    [
      "console.enabled=true",
      "console.natsUrlSecret=console-nats",
      "eventing.enabled=false",
      "egress.mode=proxy",
      "egress.allowHosts={api.weixin.qq.com}",
    ],
  ],
  // Trigger names built from a long release name used to collide once truncated to 63 characters.
  ["a 40-character release name", [], "photos-production-eu-west-1-blue-release"],
];
