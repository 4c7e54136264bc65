CREATE TABLE `apps` (
	`guid` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`space_guid` text NOT NULL,
	`state` text NOT NULL,
	`lifecycle_type` text NOT NULL,
	`current_droplet_guid` text,
	`environment_variables` text DEFAULT '{}' NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	FOREIGN KEY (`space_guid`) REFERENCES `spaces`(`guid`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `apps_space_name` ON `apps` (`space_guid`,`name`);--> statement-breakpoint
CREATE TABLE `audit_events` (
	`guid` text PRIMARY KEY NOT NULL,
	`type` text NOT NULL,
	`actor_guid` text NOT NULL,
	`actor_type` text NOT NULL,
	`actor_name` text NOT NULL,
	`target_guid` text NOT NULL,
	`target_type` text NOT NULL,
	`target_name` text NOT NULL,
	`space_guid` text,
	`data` text NOT NULL,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audit_events_target` ON `audit_events` (`target_guid`);--> statement-breakpoint
CREATE INDEX `audit_events_space` ON `audit_events` (`space_guid`);--> statement-breakpoint
CREATE TABLE `builds` (
	`guid` text PRIMARY KEY NOT NULL,
	`app_guid` text NOT NULL,
	`package_guid` text NOT NULL,
	`state` text NOT NULL,
	`error` text,
	`droplet_guid` text,
	`staging_location` text DEFAULT 'worker' NOT NULL,
	`staging_cell_guid` text,
	`created_by_guid` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	FOREIGN KEY (`app_guid`) REFERENCES `apps`(`guid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `cells` (
	`guid` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`zone` text NOT NULL,
	`address` text NOT NULL,
	`token_hash` text NOT NULL,
	`capacity` text NOT NULL,
	`free` text,
	`cached_layers` text DEFAULT '[]' NOT NULL,
	`state` text NOT NULL,
	`last_heartbeat_at` integer,
	`desired_version` integer DEFAULT 0 NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `cells_token_hash_unique` ON `cells` (`token_hash`);--> statement-breakpoint
CREATE TABLE `counters` (
	`name` text PRIMARY KEY NOT NULL,
	`value` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `droplets` (
	`guid` text PRIMARY KEY NOT NULL,
	`app_guid` text NOT NULL,
	`build_guid` text,
	`package_guid` text,
	`state` text NOT NULL,
	`image` text NOT NULL,
	`manifest_digest` text NOT NULL,
	`index_digest` text,
	`execution_metadata` text NOT NULL,
	`process_types` text NOT NULL,
	`image_spec` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	FOREIGN KEY (`app_guid`) REFERENCES `apps`(`guid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `enrollment_tokens` (
	`token_hash` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`used_at` text,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `feature_flags` (
	`name` text PRIMARY KEY NOT NULL,
	`enabled` integer NOT NULL,
	`custom_error_message` text,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `instances` (
	`instance_guid` text PRIMARY KEY NOT NULL,
	`process_guid` text NOT NULL,
	`app_guid` text NOT NULL,
	`index` integer NOT NULL,
	`process_version` text NOT NULL,
	`spec` text NOT NULL,
	`cell_guid` text,
	`state` text NOT NULL,
	`presence` text DEFAULT 'ORDINARY' NOT NULL,
	`since` integer NOT NULL,
	`host_port` integer,
	`crash_count` integer DEFAULT 0 NOT NULL,
	`crash_reason` text,
	`placement_error` text,
	`usage` text,
	`last_report_at` integer,
	FOREIGN KEY (`process_guid`) REFERENCES `processes`(`guid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `instances_process` ON `instances` (`process_guid`);--> statement-breakpoint
CREATE INDEX `instances_cell` ON `instances` (`cell_guid`);--> statement-breakpoint
CREATE TABLE `packages` (
	`guid` text PRIMARY KEY NOT NULL,
	`app_guid` text NOT NULL,
	`type` text NOT NULL,
	`state` text NOT NULL,
	`image` text NOT NULL,
	`username` text,
	`password_encrypted` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	FOREIGN KEY (`app_guid`) REFERENCES `apps`(`guid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `processes` (
	`guid` text PRIMARY KEY NOT NULL,
	`app_guid` text NOT NULL,
	`type` text NOT NULL,
	`version` text NOT NULL,
	`command` text,
	`user` text,
	`instances` integer NOT NULL,
	`memory_in_mb` integer NOT NULL,
	`disk_in_mb` integer NOT NULL,
	`log_rate_limit_in_bytes_per_second` integer DEFAULT -1 NOT NULL,
	`health_check_type` text NOT NULL,
	`health_check_timeout` integer,
	`health_check_invocation_timeout` integer,
	`health_check_interval` integer,
	`health_check_endpoint` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	FOREIGN KEY (`app_guid`) REFERENCES `apps`(`guid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `processes_app_type` ON `processes` (`app_guid`,`type`);--> statement-breakpoint
CREATE TABLE `registry_access` (
	`id` integer PRIMARY KEY NOT NULL,
	`trusted_ca_certificates` text NOT NULL,
	`insecure_registries` text NOT NULL,
	`cell_only_registries` text NOT NULL,
	`version` integer NOT NULL,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `roles` (
	`guid` text PRIMARY KEY NOT NULL,
	`type` text NOT NULL,
	`user_guid` text NOT NULL,
	`space_guid` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	FOREIGN KEY (`user_guid`) REFERENCES `users`(`guid`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`space_guid`) REFERENCES `spaces`(`guid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `roles_user_space_type` ON `roles` (`user_guid`,`space_guid`,`type`);--> statement-breakpoint
CREATE TABLE `route_destinations` (
	`guid` text PRIMARY KEY NOT NULL,
	`route_guid` text NOT NULL,
	`app_guid` text NOT NULL,
	`process_type` text DEFAULT 'web' NOT NULL,
	`port` integer,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	FOREIGN KEY (`route_guid`) REFERENCES `routes`(`guid`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`app_guid`) REFERENCES `apps`(`guid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `route_destinations_unique` ON `route_destinations` (`route_guid`,`app_guid`,`process_type`);--> statement-breakpoint
CREATE TABLE `routers` (
	`guid` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`token_hash` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `routers_token_hash_unique` ON `routers` (`token_hash`);--> statement-breakpoint
CREATE TABLE `routes` (
	`guid` text PRIMARY KEY NOT NULL,
	`host` text NOT NULL,
	`domain` text NOT NULL,
	`space_guid` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	FOREIGN KEY (`space_guid`) REFERENCES `spaces`(`guid`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `routes_host_domain` ON `routes` (`host`,`domain`);--> statement-breakpoint
CREATE TABLE `spaces` (
	`guid` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `spaces_name_unique` ON `spaces` (`name`);--> statement-breakpoint
CREATE TABLE `users` (
	`guid` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`admin` integer DEFAULT false NOT NULL,
	`token_hash` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `users_name_unique` ON `users` (`name`);--> statement-breakpoint
CREATE UNIQUE INDEX `users_token_hash_unique` ON `users` (`token_hash`);