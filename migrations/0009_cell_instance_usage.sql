ALTER TABLE `cells` ADD `instance_usage` text;--> statement-breakpoint
ALTER TABLE `cells` ADD `usage_reported_at` integer;--> statement-breakpoint
ALTER TABLE `instances` DROP COLUMN `usage`;--> statement-breakpoint
ALTER TABLE `instances` DROP COLUMN `last_report_at`;