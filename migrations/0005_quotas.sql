CREATE TABLE `quotas` (
	`guid` text PRIMARY KEY NOT NULL,
	`scope` text NOT NULL,
	`name` text NOT NULL,
	`organization_guid` text DEFAULT '' NOT NULL,
	`total_memory_in_mb` integer,
	`per_process_memory_in_mb` integer,
	`total_instances` integer,
	`log_rate_limit_in_bytes_per_second` integer,
	`total_routes` integer,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `quotas_scope_org_name` ON `quotas` (`scope`,`organization_guid`,`name`);--> statement-breakpoint
ALTER TABLE `organizations` ADD `quota_guid` text;--> statement-breakpoint
ALTER TABLE `spaces` ADD `quota_guid` text;--> statement-breakpoint
-- CC's "default" organization quota (10 GiB, 100 instances, 1000 routes): every organization without a quota of its own has it, so a fresh deployment is never unlimited.
INSERT INTO `quotas` (`guid`, `scope`, `name`, `organization_guid`, `total_memory_in_mb`, `per_process_memory_in_mb`, `total_instances`, `log_rate_limit_in_bytes_per_second`, `total_routes`)
VALUES ('9f0a3c1e-5b7d-4e2a-8c6f-1d2e3f4a5b6c', 'organization', 'default', '', 10240, NULL, 100, NULL, 1000);
