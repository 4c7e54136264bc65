ALTER TABLE `enrollment_tokens` ADD `guid` text;--> statement-breakpoint
ALTER TABLE `enrollment_tokens` ADD `expires_at` text;--> statement-breakpoint
ALTER TABLE `enrollment_tokens` ADD `revoked_at` text;--> statement-breakpoint
CREATE UNIQUE INDEX `enrollment_tokens_guid_unique` ON `enrollment_tokens` (`guid`);--> statement-breakpoint
-- Tokens made before expiry existed get a guid and expire now: unused ones never had a limit, which is what this change ends.
UPDATE `enrollment_tokens` SET `guid` = lower(hex(randomblob(16))), `expires_at` = `created_at` WHERE `guid` IS NULL;
