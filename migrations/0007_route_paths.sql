DROP INDEX `routes_host_domain`;--> statement-breakpoint
ALTER TABLE `routes` ADD `path` text DEFAULT '' NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX `routes_host_domain_path` ON `routes` (`host`,`domain`,`path`);