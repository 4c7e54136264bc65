CREATE TABLE `deployments` (
	`guid` text PRIMARY KEY NOT NULL,
	`app_guid` text NOT NULL,
	`state` text NOT NULL,
	`status_value` text NOT NULL,
	`status_reason` text NOT NULL,
	`strategy` text DEFAULT 'rolling' NOT NULL,
	`droplet_guid` text,
	`previous_droplet_guid` text,
	`deploying_process_guid` text,
	`new_processes` text NOT NULL,
	`original_instances` integer NOT NULL,
	`max_in_flight` integer DEFAULT 1 NOT NULL,
	`last_healthy_at` text,
	`status_updated_at` text NOT NULL,
	`error` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	FOREIGN KEY (`app_guid`) REFERENCES `apps`(`guid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `deployments_app` ON `deployments` (`app_guid`);--> statement-breakpoint
CREATE INDEX `deployments_status` ON `deployments` (`status_value`);--> statement-breakpoint
DROP INDEX `processes_app_type`;--> statement-breakpoint
CREATE INDEX `processes_app_type` ON `processes` (`app_guid`,`type`);