ALTER TABLE `cells` ADD `instance_usage` text;--> statement-breakpoint
ALTER TABLE `cells` ADD `usage_reported_at` integer;