// The AWS SDK's parts the S3 backend uses, from one module: the image's bundle keeps it in a file of its own, loaded
// when an S3 backend is made (scripts/src/bundle.ts).
export { DeleteObjectCommand, GetObjectCommand, NoSuchKey, S3Client } from "@aws-sdk/client-s3";
export { Upload } from "@aws-sdk/lib-storage";
